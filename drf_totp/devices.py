"""The life of a user's TOTP device: enroll, confirm, use, disable, report.

Plain functions over the models; they know nothing of HTTP and read settings when called.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from . import exceptions, recovery, signals, statements
from .models import RecoveryCode, TOTPDevice, VerifiedToken, secret_columns
from .settings import totp_settings
from .verification import Accepted, Action, check, record

DEFAULT_NAME = "default"
# A pending device that is to replace a confirmed one with a weak secret (which holds, as a rule,
# the default name: names are unique per user). Confirmed, it takes the default name.
REPLACEMENT_NAME = "replacement"


def new_secret() -> str:
    """Base32 of 160 random bits (RFC 4226 recommends 160)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def provisioning_uri(device: TOTPDevice) -> str:
    """The ``otpauth://`` URL an authenticator app scans; labelled with email, else username."""
    user = device.user
    account = getattr(user, "email", "") or user.get_username()
    return device.totp().provisioning_uri(name=account, issuer_name=totp_settings.ISSUER_NAME)


def start_enrollment(
    user: AbstractBaseUser, *, second_factor_passed: bool = False, now: datetime | None = None
) -> TOTPDevice:
    """Create the user's pending device, or give the pending one a new secret.

    Codes of a replaced secret stop working at once. Raises ``AlreadyEnabled`` if the user has a
    confirmed device; that device is left untouched. Unless its secret is weak: then the new
    device replaces it once confirmed, provided the credential of the request passed the second
    factor (``second_factor_passed``, else ``OTPRequired``), so that a stolen password alone
    cannot swap the authenticator.
    """
    fields: dict[str, Any] = {
        **secret_columns(new_secret()),
        "digits": totp_settings.DIGITS,
        "period": totp_settings.PERIOD,
        "algorithm": totp_settings.ALGORITHM,
        "created_at": now or timezone.now(),
        "last_used_step": 0,
        "last_used_at": None,
        "failure_count": 0,
        "locked_until": None,
    }
    confirmed = TOTPDevice.objects.filter(user=user, is_confirmed=True)
    name = DEFAULT_NAME
    # Two rounds: a concurrent request may create the row between our UPDATE and INSERT.
    for _round in range(2):
        weak = set(confirmed.values_list("weak_secret", flat=True))
        if False in weak:
            raise exceptions.AlreadyEnabled()
        if weak and not second_factor_passed:
            raise exceptions.OTPRequired()
        name = REPLACEMENT_NAME if weak else DEFAULT_NAME
        if TOTPDevice.objects.filter(user=user, name=name, is_confirmed=False).update(**fields):
            break
        try:
            with transaction.atomic():
                TOTPDevice.objects.create(user=user, name=name, **fields)
            break
        except IntegrityError:
            continue
    return TOTPDevice(user=cast(Any, user), name=name, **fields)


def confirm(
    user: AbstractBaseUser, raw: str, *, now: datetime | None = None, request: Any = None
) -> tuple[Accepted, list[str]]:
    """Confirm the pending device with its first code (whose step is consumed): 2FA is on.

    A replacement (see ``start_enrollment``) takes the place of the weak device in the same
    transaction. Returns the accepted code and the recovery codes issued with it (a new set),
    to be shown once.
    """
    device = TOTPDevice.objects.filter(user=user, is_confirmed=False).first()
    if device is None:
        if TOTPDevice.objects.filter(user=user, is_confirmed=True).exists():
            raise exceptions.AlreadyEnabled()
        raise exceptions.NoPendingDevice()
    device.user = user
    now = now or timezone.now()

    def activate(accepted: Accepted) -> int:
        pending = accepted.row().filter(is_confirmed=False)
        changes = {**accepted.changes(), "is_confirmed": True, "confirmed_at": now}
        if device.name != REPLACEMENT_NAME:
            return pending.update(**changes)
        try:
            with transaction.atomic():
                TOTPDevice.objects.filter(user=user, is_confirmed=True, weak_secret=True).delete()
                changed = pending.update(**changes, name=DEFAULT_NAME)
                if not changed:
                    transaction.set_rollback(True)  # the weak device stays
        except IntegrityError:  # a device with a strong secret was confirmed meanwhile: it stays
            raise exceptions.AlreadyEnabled() from None
        return changed

    accepted = check(device, raw, now=now, request=request, allow_recovery=False, action=activate)
    codes = recovery.issue(user, now)
    signals.send_on_commit(signals.totp_enabled, user, request)
    return accepted, codes


def confirmed_device(user: AbstractBaseUser) -> TOTPDevice:
    """The user's confirmed device (its ``user`` already set), or ``NotEnabled``."""
    device = statements.confirmed_device(user)
    if device is None:
        raise exceptions.NotEnabled()
    return device


def authenticate(
    user: AbstractBaseUser,
    raw: str,
    *,
    now: datetime | None = None,
    request: Any = None,
    action: Action = record,
) -> Accepted:
    """The second factor: a code of the user's confirmed device, or a recovery code."""
    return check(confirmed_device(user), raw, now=now, request=request, action=action)


def regenerate_recovery_codes(
    user: AbstractBaseUser, raw: str, *, now: datetime | None = None, request: Any = None
) -> list[str]:
    """A new set of recovery codes, given a TOTP code; the old set stops working."""
    accepted = check(confirmed_device(user), raw, now=now, request=request, allow_recovery=False)
    codes = recovery.issue(user, accepted.at)
    signals.send_on_commit(signals.recovery_codes_regenerated, user, request)
    return codes


def disable(
    user: AbstractBaseUser, raw: str, *, now: datetime | None = None, request: Any = None
) -> None:
    """Turn 2FA off given a code: the device, recovery codes and token marks are deleted.

    With a TOTP code, the check and the delete are one statement.
    """

    def delete(accepted: Accepted) -> int:
        return accepted.row().delete()[0]

    check(confirmed_device(user), raw, now=now, request=request, action=delete)
    _forget(user, request)


def reset(user: AbstractBaseUser, *, request: Any = None) -> bool:
    """An administrator's disable, without a code: True if the user had a device."""
    deleted = TOTPDevice.objects.filter(user=user).delete()[0]
    if deleted:
        _forget(user, request)
    return bool(deleted)


def _forget(user: AbstractBaseUser, request: Any) -> None:
    """After the device is gone: the recovery codes and token marks go too."""
    RecoveryCode.objects.filter(user=user).delete()
    VerifiedToken.objects.filter(user=user).delete()
    signals.send_on_commit(signals.totp_disabled, user, request)


def unlock(user: AbstractBaseUser, *, request: Any = None) -> bool:
    """An administrator lifts the user's lock and failure count: True if there was one."""
    unlocked = (
        TOTPDevice.objects.filter(user=user)
        .filter(Q(failure_count__gt=0) | Q(locked_until__isnull=False))
        .update(failure_count=0, locked_until=None)
    )
    if unlocked:
        signals.send_on_commit(signals.totp_unlocked, user, request)
    return bool(unlocked)


@dataclass(frozen=True)
class Status:
    enabled: bool
    pending: bool
    confirmed_at: datetime | None
    last_used_at: datetime | None
    locked_until: datetime | None
    locked_out: bool
    recovery_codes_remaining: int
    weak_secret: bool


def status(user: AbstractBaseUser, *, now: datetime | None = None) -> Status:
    """The user's 2FA state, in one read that never decrypts the secret."""
    now = now or timezone.now()
    found = statements.status_device(user)
    if found is None:
        return Status(False, False, None, None, None, False, 0, False)
    device, remaining = found
    enabled = device.is_confirmed
    locked_until = (
        device.locked_until if device.locked_until and device.locked_until > now else None
    )
    return Status(
        enabled=enabled,
        pending=not enabled,
        confirmed_at=device.confirmed_at,
        last_used_at=device.last_used_at if enabled else None,
        locked_until=locked_until if enabled else None,
        locked_out=enabled and device.failure_count >= totp_settings.MAX_FAILURES,
        recovery_codes_remaining=remaining if enabled else 0,
        weak_secret=enabled and device.weak_secret,
    )
