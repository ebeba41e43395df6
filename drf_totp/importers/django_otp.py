"""django-otp: ``otp_totp`` devices, with the tokens of ``otp_static`` devices as recovery codes."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from django.apps import apps
from django.db import connection

from ..models import RecoveryCode
from ..settings import totp_settings
from .base import Candidate, Codes, Report, Skipped, Writer, run, username

DJANGO_OTP = "django-otp"


def import_django_otp(
    *, dry_run: bool = False, now: datetime | None = None, reimport: Collection[Any] | None = None
) -> Report:
    """Import confirmed ``django_otp.plugins.otp_totp`` devices, one per user.

    The hex key becomes base32, ``last_t`` the last used step. A device with ``t0`` other than 0
    is skipped (drf_totp counts steps from the Unix epoch and keeps no offset); ``drift`` and
    ``tolerance`` are not kept (``TOTP_VALID_WINDOW`` applies). If ``otp_static`` is installed,
    the tokens of the user's confirmed static devices become recovery codes.
    """
    return run([read], dry_run=dry_run, now=now, reimport=reimport)[0]


def read(writer: Writer) -> Report:
    report = Report(DJANGO_OTP, dry_run=writer.dry_run)
    if not apps.is_installed("django_otp.plugins.otp_totp"):
        report.unavailable = "django_otp.plugins.otp_totp is not installed"
        return report
    model = apps.get_model("otp_totp", "TOTPDevice")
    if model._meta.db_table not in connection.introspection.table_names():
        report.unavailable = f"no {model._meta.db_table} table (django-otp not migrated)"
        return report
    # Per user, the confirmed device used last comes first: it is the one imported.
    rows = model.objects.select_related("user").order_by("user_id", "-confirmed", "-last_t", "pk")
    static = _static_tokens()
    for device in rows:
        found = _candidate(device, static.get(device.user_id), writer.now)
        writer.offer(report, device.user_id, found)
    return report


def _candidate(device: Any, codes: Codes | None, now: datetime) -> Candidate | Skipped:
    user = username(device.user)
    origin = f'django-otp TOTPDevice #{device.pk} "{device.name}"'
    if not device.confirmed:
        return Skipped(user, origin, "not confirmed (enrollment never finished)")
    if device.t0 != 0:
        reason = (
            f"t0 is {device.t0}: its steps count from t0, drf_totp's from the Unix epoch, "
            "and drf_totp keeps no offset"
        )
        return Skipped(user, origin, reason)
    try:
        key = bytes.fromhex(device.key)
    except ValueError:
        return Skipped(user, origin, "the key is not valid hex")
    return Candidate(
        user_id=device.user_id,
        user=user,
        origin=origin,
        source_id=str(device.pk),
        key=key,
        digits=device.digits,
        period=device.step,
        created_at=getattr(device, "created_at", None) or now,
        # -1: never used. Its steps are counted from the epoch (t0 is 0) and include the
        # drift, as drf_totp's steps do: the same number names the same code.
        last_used_step=max(device.last_t, 0),
        last_used_at=getattr(device, "last_used_at", None),
        notes=_not_kept(device),
        codes=codes,
    )


def _not_kept(device: Any) -> list[str]:
    notes = [f"drift of {device.drift} step(s) not kept"] if device.drift else []
    if device.tolerance != totp_settings.VALID_WINDOW:
        notes.append(
            f"tolerance {device.tolerance} not kept (TOTP_VALID_WINDOW "
            f"{totp_settings.VALID_WINDOW} applies)"
        )
    return notes


def _static_tokens() -> dict[Any, Codes]:
    """Per user id, the tokens of their confirmed ``otp_static`` devices (django-otp keeps them
    in the clear, and deletes a token once used)."""
    if not apps.is_installed("django_otp.plugins.otp_static"):
        return {}
    model = apps.get_model("otp_static", "StaticToken")
    rows = model.objects.filter(device__confirmed=True).order_by("device_id", "pk")
    tokens: dict[Any, list[str]] = {}
    devices: dict[Any, dict[str, None]] = {}
    for user_id, device_id, token in rows.values_list("device__user_id", "device_id", "token"):
        tokens.setdefault(user_id, []).append(token)
        devices.setdefault(user_id, {})[f"django-otp StaticDevice #{device_id}"] = None
    return {
        user_id: Codes.plain(
            ", ".join(devices[user_id]), str(RecoveryCode.Format.DJANGO_OTP), codes
        )
        for user_id, codes in tokens.items()
    }
