"""django-allauth's MFA: TOTP authenticators, with the user's unused recovery codes."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps
from django.db import connection

from ..models import RecoveryCode
from ..settings import totp_settings
from .base import (
    Candidate,
    Codes,
    Report,
    Skipped,
    Writer,
    base32_key,
    current_step,
    run,
    username,
)

ALLAUTH = "allauth"


def import_allauth(
    *, dry_run: bool = False, now: datetime | None = None, reimport: Collection[Any] | None = None
) -> Report:
    """Import allauth.mfa TOTP authenticators and the user's unused recovery codes.

    The secret is decrypted with allauth's MFA adapter; digits and period come from
    ``MFA_TOTP_DIGITS`` / ``MFA_TOTP_PERIOD``. allauth remembers used codes only in its cache, so
    the last used step is set to the current step (plus ``MFA_TOTP_TOLERANCE``) at import time.
    The recovery codes are the ones allauth's own code derives from its seed, less the used ones.
    """
    return run([read], dry_run=dry_run, now=now, reimport=reimport)[0]


@dataclass(frozen=True)
class _Settings:
    """allauth's settings and adapter, as they apply to every authenticator, and the notes they
    give each import."""

    adapter: Any
    digits: int
    period: int
    tolerance: int

    def notes(self) -> list[str]:
        notes = [
            "allauth keeps used codes only in its cache: last used step set to the current step"
            + (f" plus its tolerance ({self.tolerance})" if self.tolerance > 0 else "")
            + ", so codes from before the import are refused"
        ]
        if self.tolerance != totp_settings.VALID_WINDOW:
            notes.append(
                f"MFA_TOTP_TOLERANCE {self.tolerance} not kept (TOTP_VALID_WINDOW "
                f"{totp_settings.VALID_WINDOW} applies)"
            )
        return notes


def read(writer: Writer) -> Report:
    report = Report(ALLAUTH, dry_run=writer.dry_run)
    if not apps.is_installed("allauth.mfa"):
        report.unavailable = "allauth.mfa is not installed"
        return report
    from allauth.mfa import app_settings
    from allauth.mfa.adapter import get_adapter
    from allauth.mfa.models import Authenticator

    if Authenticator._meta.db_table not in connection.introspection.table_names():
        report.unavailable = f"no {Authenticator._meta.db_table} table (allauth not migrated)"
        return report
    # Before MFA_TOTP_TOLERANCE existed (allauth 65.x), only the current step was accepted.
    tolerance = getattr(app_settings, "TOTP_TOLERANCE", 0)
    config = _Settings(get_adapter(), app_settings.TOTP_DIGITS, app_settings.TOTP_PERIOD, tolerance)
    kinds = Authenticator.Type
    by_user: dict[Any, dict[str, list[Any]]] = {}
    for row in Authenticator.objects.select_related("user").order_by("user_id", "pk"):
        by_user.setdefault(row.user_id, {}).setdefault(row.type, []).append(row)
    for user_id, rows in by_user.items():
        totp = rows.pop(kinds.TOTP, [])
        codes = rows.pop(kinds.RECOVERY_CODES, [])
        for skip in _left_out(rows, [] if totp else codes):
            writer.offer(report, user_id, skip)
        for row in totp:
            unused = _unused_codes(codes[0]) if codes else None
            writer.offer(report, user_id, _candidate(row, unused, config, writer.now))
    return report


def _left_out(others: dict[str, list[Any]], codes_alone: list[Any]) -> list[Skipped]:
    """Skips for authenticators of other kinds, and for recovery codes without a TOTP."""
    skips = [
        Skipped(
            username(row.user),
            f"allauth {kind} authenticator #{row.pk}",
            "drf_totp imports TOTP only",
        )
        for kind, rows in others.items()
        for row in rows
    ]
    return skips + [
        Skipped(
            username(row.user),
            f"allauth recovery codes #{row.pk}",
            "the user has no allauth TOTP authenticator to go with them",
        )
        for row in codes_alone
    ]


def _candidate(
    row: Any, codes: Codes | None, config: _Settings, now: datetime
) -> Candidate | Skipped:
    user, origin = username(row.user), f"allauth TOTP authenticator #{row.pk}"
    try:
        secret = config.adapter.decrypt(row.data["secret"])
    except Exception as exc:  # an adapter may raise anything on a bad or foreign ciphertext
        reason = f"the secret could not be decrypted by the MFA adapter ({type(exc).__name__})"
        return Skipped(user, origin, reason)
    key = base32_key(str(secret))
    if key is None:
        return Skipped(user, origin, "the secret is not valid base32")
    return Candidate(
        user_id=row.user_id,
        user=user,
        origin=origin,
        source_id=str(row.pk),
        key=key,
        digits=config.digits,
        period=config.period,
        created_at=row.created_at or now,
        last_used_step=current_step(now, config.period) + max(config.tolerance, 0),
        last_used_at=row.last_used_at,
        notes=config.notes(),
        codes=codes,
    )


def _unused_codes(row: Any) -> Codes:
    """allauth's unused recovery codes, recovered by allauth's own code: it derives them from an
    encrypted seed and a mask of the used ones (or keeps migrated codes encrypted)."""
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    origin = f"allauth recovery codes #{row.pk}"
    try:
        unused = RecoveryCodes(row).get_unused_codes()
    except Exception as exc:  # a bad seed or ciphertext must not stop the TOTP import
        reason = f"the codes could not be recovered ({type(exc).__name__})"
        return Codes(origin, str(RecoveryCode.Format.ALLAUTH), problems=[reason])
    return Codes.plain(origin, str(RecoveryCode.Format.ALLAUTH), unused)
