"""The life of a user's TOTP device: enroll, confirm, use, disable, report.

Plain functions over the models; they know nothing of HTTP and read settings when called.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from urllib.parse import quote, urlencode

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import exceptions, lockout, recovery, signals, statements
from .models import Algorithm, RecoveryCode, TOTPDevice, VerifiedToken, secret_columns
from .settings import totp_settings
from .verification import Accepted, Action, check, record

DEFAULT_NAME = "default"
# A pending device that is to replace a confirmed one with a weak secret (which holds, as a rule,
# the default name: names are unique per user). Confirmed, it takes the default name.
REPLACEMENT_NAME = "replacement"


def new_secret() -> str:
    """Base32 of 160 random bits (RFC 4226 recommends 160)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


@sensitive_variables()
def provisioning_uri(device: TOTPDevice) -> str:
    """The ``otpauth://`` URL an authenticator app scans, in the Key Uri Format: labelled
    ``issuer:account`` (the user's email, else username), each part URL-encoded.

    The parameters are the ones pyotp writes: the secret, the issuer, and digits, period and
    algorithm where they differ from 6, 30 and SHA1. (pyotp's own ``provisioning_uri`` leaves a
    "/" of the label unencoded.)
    """
    user = device.user
    account = _label_part(getattr(user, "email", "") or user.get_username())
    issuer = _label_part(totp_settings.ISSUER_NAME)
    params: dict[str, str | int] = {"secret": device.secret, "issuer": issuer}
    if device.algorithm != str(Algorithm.SHA1):
        params["algorithm"] = device.algorithm
    if device.digits != 6:
        params["digits"] = device.digits
    if device.period != 30:
        params["period"] = device.period
    # quote() keeps "/" unless told otherwise: safe="" encodes it.
    label = f"{quote(issuer, safe='')}:{quote(account, safe='')}"
    return f"otpauth://totp/{label}?{urlencode(params, quote_via=quote, safe='')}"


def _label_part(text: str) -> str:
    """The issuer or account as the label can hold it. The Key Uri Format forbids a colon in
    either (its parsers split the label at the first ":" or "%3A"): each becomes "_". Spaces
    before the account are dropped by its parsers, so they go at both ends."""
    return text.replace(":", "_").strip()


@sensitive_variables()
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


@sensitive_variables()
def confirm(
    user: AbstractBaseUser, raw: str, *, now: datetime | None = None, request: Any = None
) -> tuple[Accepted, list[str]]:
    """Confirm the pending device with its first code (whose step is consumed): 2FA is on.

    A replacement (see ``start_enrollment``) takes the place of the weak device in the same
    transaction. Returns the accepted code and the recovery codes issued with it (a new set),
    to be shown once.
    """
    now = now or timezone.now()

    def activate(accepted: Accepted) -> int:
        pending = accepted.row().filter(is_confirmed=False)
        changes = {**accepted.changes(), "is_confirmed": True, "confirmed_at": now}
        if accepted.device.name != REPLACEMENT_NAME:
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

    pending = lockout.Row(user, confirmed=False)
    accepted = check(
        pending,
        raw,
        now=now,
        request=request,
        allow_recovery=False,
        action=activate,
        lost=exceptions.AlreadyEnabled,  # another code of the window confirmed it first
    )
    codes = recovery.issue(user, now)
    signals.send_on_commit(signals.totp_enabled, user, request)
    return accepted, codes


@sensitive_variables()
def authenticate(
    user: AbstractBaseUser,
    raw: str,
    *,
    now: datetime | None = None,
    request: Any = None,
    action: Action = record,
) -> Accepted:
    """The second factor: a code of the user's confirmed device, or a recovery code."""
    return check(lockout.Row(user), raw, now=now, request=request, action=action)


@sensitive_variables()
def regenerate_recovery_codes(
    user: AbstractBaseUser, raw: str, *, now: datetime | None = None, request: Any = None
) -> list[str]:
    """A new set of recovery codes, given a TOTP code; the old set stops working."""
    accepted = check(lockout.Row(user), raw, now=now, request=request, allow_recovery=False)
    codes = recovery.issue(user, accepted.at)
    signals.send_on_commit(signals.recovery_codes_regenerated, user, request)
    return codes


@sensitive_variables()
def disable(
    user: AbstractBaseUser,
    raw: str,
    *,
    password: str | None = None,
    now: datetime | None = None,
    request: Any = None,
) -> None:
    """Turn 2FA off given a code: the device, recovery codes and token marks are deleted.

    With ``TOTP_DISABLE_REQUIRES_PASSWORD``, ``password`` is checked with the code, after the
    guess is reserved: a wrong one counts as a wrong code, and the answer does not say which of
    the two was wrong. With a TOTP code, the check and the delete are one statement.
    """

    def delete(accepted: Accepted) -> int:
        return accepted.row().delete()[0]

    def password_ok() -> bool:
        return password is not None and user.check_password(password)

    second = password_ok if totp_settings.DISABLE_REQUIRES_PASSWORD else None
    check(lockout.Row(user), raw, now=now, request=request, action=delete, password=second)
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
    return Status(
        enabled=enabled,
        pending=not enabled,
        confirmed_at=device.confirmed_at,
        last_used_at=device.last_used_at if enabled else None,
        locked_until=lockout.locked_until(device, now) if enabled else None,
        locked_out=enabled and lockout.locked_out(device),
        recovery_codes_remaining=remaining if enabled else 0,
        weak_secret=enabled and device.weak_secret,
    )
