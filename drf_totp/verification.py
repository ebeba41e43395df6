"""Checking a code: the one path every code takes (verify, validate, disable, login, recovery).

Guarantees, enforced by the database so they hold across processes and hosts:

- reserve, then evaluate: before any code is computed, the guess is counted (and the lock that
  a failure would earn is set) by one conditional statement that only an unlocked row passes
  (``lockout.reserve``); while a user is locked no code is evaluated and the count does not
  grow, and however many requests arrive together, no more codes are evaluated than one at a
  time would be;
- a TOTP code is accepted only for a step later than the last accepted one, in the same
  conditional statement that records the success and resets the count and the lock;
- a recovery code is consumed by one conditional UPDATE, so it works once however many
  requests send it together.

A reserved guess stays counted when the code is wrong, and when the request dies before the
code is evaluated (fail safe). A right code that is not accepted (``token_reused``: its step or
recovery code was used already; or its success lost a race to another request) is not a guess:
its reservation is released: one failure less, and the lock it set lifted, by a conditional
UPDATE that applies only while no success reset the count since (the use count is unchanged),
so it never erases a failure that another request counted meanwhile. (A code that is right can
only be known, not guessed: at most 3 of 1,000,000 codes are right at a time.)
With the password of ``disable/`` required, every refusal counts, so that none tells that the
password was right.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from . import exceptions, lockout, otp, recovery, signals, statements
from .models import RecoveryCode, TOTPDevice
from .settings import totp_settings

TOTP = "totp"
RECOVERY = "recovery"

# The lengths a TOTP code may have (RFC 4226 asks for 6 at least; apps show 6 or 8).
_DIGITS = range(6, 9)


@dataclass(frozen=True)
class Accepted:
    """A code that matched: handed to the action that writes it, then returned by ``check``."""

    device: TOTPDevice
    at: datetime
    step: int | None = None  # the TOTP code's time step; None for a recovery code

    @property
    def method(self) -> str:
        return TOTP if self.step is not None else RECOVERY

    def row(self) -> QuerySet[TOTPDevice]:
        """The device's row while, for a TOTP code, no later or equal step was used (a recovery
        code's own UPDATE gated the row). No lock condition: the guess was reserved before the
        code was computed, and the lock that reservation set must not refuse its own success."""
        row = TOTPDevice.objects.filter(pk=self.device.pk)
        if self.step is None:
            return row
        return row.filter(last_used_step__lt=self.step)

    def changes(self) -> dict[str, Any]:
        """The columns that record the success (which also resets the failure count)."""
        columns: dict[str, Any] = {
            "last_used_at": self.at,
            "use_count": F("use_count") + 1,
            "failure_count": 0,
            "locked_until": None,
        }
        if self.step is not None:
            columns["last_used_step"] = self.step
        return columns


# Writes an accepted code to the device's row (``Accepted.row`` and ``changes`` say which and
# how) and returns how many rows it changed: 0 means the row's state moved on (another request
# won), and the code is refused.
Action = Callable[[Accepted], int]


def record(accepted: Accepted) -> int:
    """Write the success to the device's row."""
    if accepted.step is None:  # a recovery code
        return accepted.row().update(**accepted.changes())
    # A TOTP code, the path of every login: one statement of SQL with the same conditions.
    return statements.accept(accepted.device, accepted.step, accepted.at)


def _missing(row: lockout.Row) -> Exception:
    """The error when the user has no device of the kind ``row`` names."""
    if row.confirmed or row.pk is not None:
        return exceptions.NotEnabled()
    if TOTPDevice.objects.filter(user=row.user, is_confirmed=True).exists():
        return exceptions.AlreadyEnabled()
    return exceptions.NoPendingDevice()


def _invalid_format(digits: int, allow_recovery: bool) -> Exception:
    message = _("Enter the %(digits)d-digit code from your authenticator app.")
    if allow_recovery:
        message = _(
            "Enter the %(digits)d-digit code from your authenticator app, or a recovery code."
        )
    return exceptions.InvalidFormat(message % {"digits": digits})


def _read(row: lockout.Row) -> TOTPDevice | None:
    """The row, read without reserving anything (for an answer that checks no code)."""
    if row.pk is not None:
        return TOTPDevice.objects.filter(pk=row.pk).first()
    return statements.first_device(None, row.user, confirmed=row.confirmed)


def _reserve(
    row: lockout.Row, now: datetime, digits: int | None, allow_recovery: bool
) -> TOTPDevice:
    """The row as the reservation of this guess left it, or raise why no guess may be made."""
    for _round in range(2):
        reservation = lockout.reserve(row, now, totp=digits is not None, digits=digits)
        device = reservation.device
        if reservation.reserved and device is not None:
            return device
        if device is None:
            raise _missing(row)
        if digits is not None and device.digits != digits:
            raise _invalid_format(device.digits, allow_recovery)
        error = lockout.refusal(
            device.failure_count, device.locked_until, now, totp=digits is not None
        )
        if error is not None:
            raise error
        # Unlocked when read: a success lifted the lock in between. Once more.
    raise exceptions.Locked(now, now)


def _failed(device: TOTPDevice, now: datetime, request: Any) -> datetime | None:
    """A reserved guess that is not accepted: signal the failure with the state its reservation
    returned (never a later read); return the end of the lock it started, if it started one."""
    user = device.user
    count, until = device.failure_count, device.locked_until
    signals.send_on_commit(signals.totp_failed, user, request, failure_count=count)
    started = until if until is not None and until > now else None
    if started is not None:
        signals.send_on_commit(
            signals.totp_locked, user, request, failure_count=count, locked_until=started
        )
    if count == totp_settings.MAX_FAILURES:
        signals.send_on_commit(signals.totp_locked_out, user, request, failure_count=count)
    return started


def _wrong(device: TOTPDevice, now: datetime, request: Any, *, password: bool) -> Exception:
    """A wrong code (or, with ``password``, a wrong code or password), counted; the error says
    at once when this failure started a lock, rather than on the next attempt."""
    started = _failed(device, now, request)
    if password:
        return exceptions.InvalidCodeOrPassword(locked_until=started, now=now)
    return exceptions.InvalidToken(locked_until=started, now=now)


def _lost(device: TOTPDevice, step: int | None, lost: Callable[[], Exception]) -> Exception:
    """Why a right code's success wrote nothing: another request changed the row first. A right
    code is not a guess: its reservation is released."""
    lockout.release(device)
    state = TOTPDevice.objects.filter(pk=device.pk).values("last_used_step").first()
    if state is None:
        return exceptions.NotEnabled()
    if step is not None and step <= state["last_used_step"]:
        return exceptions.TokenReused()
    return lost()


@sensitive_variables()
def _check_totp(
    device: TOTPDevice,
    code: str,
    now: datetime,
    action: Action,
    request: Any,
    lost: Callable[[], Exception],
    password: Callable[[], bool] | None,
) -> Accepted:
    try:
        totp = device.totp()
    except exceptions.SecretUnavailable:
        lockout.release(device)  # no code was evaluated: the guess is given back
        raise
    step = otp.matching_step(totp, code, totp.timecode(now), totp_settings.VALID_WINDOW)
    if password is not None:
        # Both are always checked, so neither the answer nor its timing tells which was wrong.
        password_ok = password()
        if step is None or step <= device.last_used_step or not password_ok:
            raise _wrong(device, now, request, password=True)
    if step is None:
        raise _wrong(device, now, request, password=False)
    if step <= device.last_used_step:
        lockout.release(device)  # a right code is not a guess
        raise exceptions.TokenReused()
    accepted = Accepted(device, now, step)
    if not action(accepted):
        raise _lost(device, step, lost)
    return accepted


@sensitive_variables()
def _check_recovery(
    device: TOTPDevice,
    readings: dict[str, str],
    now: datetime,
    action: Action,
    request: Any,
    lost: Callable[[], Exception],
    password: Callable[[], bool] | None,
) -> Accepted:
    candidates = RecoveryCode.objects.filter(
        user_id=device.user_id, digest__in=recovery.candidate_digests(readings)
    )
    if password is not None and not password():
        candidates.filter(used_at__isnull=True).exists()  # the work of a check, nothing used
        raise _wrong(device, now, request, password=True)
    with transaction.atomic():
        used = candidates.filter(used_at__isnull=True).update(used_at=now)
        # Using a recovery code also lifts the lock held after too many TOTP failures.
        accepted = Accepted(device, now)
        applied = bool(used) and bool(action(accepted))
        if used and not applied:
            transaction.set_rollback(True)  # the code stays unused: nothing was granted
    if used and not applied:
        raise _lost(device, None, lost)
    if not used:
        if password is None and candidates.exists():
            lockout.release(device)  # a right code is not a guess
            raise exceptions.TokenReused(_("This recovery code has already been used."))
        raise _wrong(device, now, request, password=password is not None)
    remaining = recovery.unused(device.user_id).count()
    signals.send_on_commit(signals.recovery_code_used, device.user, request, remaining=remaining)
    return accepted


def _parse_totp(raw: str) -> str | None:
    """The code in ``raw`` if it has the form of a TOTP code of some length; whether the device
    has codes of that length is checked with the reservation."""
    digits = len(raw.replace(" ", ""))
    return otp.parse_code(raw, digits) if digits in _DIGITS else None


@sensitive_variables()
def _is_totp_code(row: lockout.Row, code: str | None) -> bool:
    """Whether ``code`` has the length of the device's codes. Read only for 7 or 8 digits (an
    imported 8-digit recovery code is one on a 6-digit device, and maybe one on an 8-digit
    device); 6 digits are never a recovery code, so no read is needed for them."""
    if code is None or len(code) == 6:
        return code is not None
    found = _read(row)
    return found is not None and found.digits == len(code)


@sensitive_variables()
def check(
    device: TOTPDevice | lockout.Row,
    raw: str,
    *,
    now: datetime | None = None,
    request: Any = None,
    allow_recovery: bool = True,
    action: Action = record,
    lost: Callable[[], Exception] = exceptions.TokenReused,
    password: Callable[[], bool] | None = None,
) -> Accepted:
    """Accept ``raw`` (a TOTP code, or a recovery code if allowed) for ``device`` once, or raise.

    ``device`` is a device already read (its row is reserved by primary key), or a
    ``lockout.Row`` (the user's device is read and reserved in one statement). On success
    ``action`` applies the result to the device's row and must report that it changed it; 0
    means another request changed the row first, answered with ``token_reused`` when that
    request used this step, ``not_enabled`` when it removed the device, and ``lost()``
    otherwise. With ``password``, a callable that checks a password sent with the code, a wrong
    password counts as a wrong code, and either is answered ``InvalidCodeOrPassword``.
    """
    now = now or timezone.now()
    row = device if isinstance(device, lockout.Row) else lockout.Row(device.user, pk=device.pk)
    code = _parse_totp(raw)
    # Some imported recovery codes look like TOTP codes: recovery.lookup decides which is which.
    readings = (
        recovery.lookup(row.user.pk, raw, totp_code=_is_totp_code(row, code))
        if allow_recovery
        else None
    )
    if readings is not None:
        reserved = _reserve(row, now, None, allow_recovery)
        accepted = _check_recovery(reserved, readings, now, action, request, lost, password)
    elif code is not None:
        reserved = _reserve(row, now, len(code), allow_recovery)
        accepted = _check_totp(reserved, code, now, action, request, lost, password)
    else:
        found = _read(row)
        if found is None:
            raise _missing(row)
        raise _invalid_format(found.digits, allow_recovery)
    signals.send_on_commit(signals.totp_verified, reserved.user, request, method=accepted.method)
    return accepted
