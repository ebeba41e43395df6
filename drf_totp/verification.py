"""Checking a code: the one path every code takes (verify, validate, disable, login, recovery).

Guarantees, enforced by the database so they hold across processes and hosts:

- a TOTP code is accepted only for a step later than the last accepted one, in the same
  conditional statement that records the success (no read-modify-write, no lock, no cache);
- a recovery code is consumed by one conditional UPDATE, so it works once however many
  requests send it together;
- while a user is locked, codes are not evaluated, and the failure counter does not grow;
- a failure is counted, and the lock it earns is set, by one conditional UPDATE that only an
  unlocked row passes, so parallel guesses cannot slip past a lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Case, DateTimeField, Exists, F, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from . import exceptions, otp, recovery, signals, statements
from .lockout import lock_schedule
from .models import RecoveryCode, TOTPDevice
from .settings import totp_settings

TOTP = "totp"
RECOVERY = "recovery"


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
        """The device's row while it is in the state the check saw: unlocked and, for a TOTP
        code, with no later or equal step used (a recovery code's own UPDATE gated the row)."""
        row = TOTPDevice.objects.filter(pk=self.device.pk)
        if self.step is None:
            return row
        return row.filter(unlocked(self.at, totp=True), last_used_step__lt=self.step)

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


def unlocked(now: datetime, *, totp: bool) -> Q:
    """Rows that may have a code checked at ``now``; past the failure limit only recovery codes."""
    gate = Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    if totp:
        gate &= Q(failure_count__lt=totp_settings.MAX_FAILURES)
    return gate


def _lock_error(
    failure_count: int, locked_until: datetime | None, now: datetime, *, totp: bool
) -> Exception | None:
    """The error for a row in this state, or None if a code may be checked (cf. ``unlocked``)."""
    # Past the failure limit, waiting does not help TOTP: say so rather than "retry later".
    if totp and failure_count >= totp_settings.MAX_FAILURES:
        return exceptions.LockedOut()
    if locked_until is not None and locked_until > now:
        return exceptions.Locked(locked_until, now)
    return None


def _ensure_unlocked(device: TOTPDevice, now: datetime, *, totp: bool) -> None:
    """Refuse before any evaluation when the loaded row is locked."""
    error = _lock_error(device.failure_count, device.locked_until, now, totp=totp)
    if error is not None:
        raise error


def _refusal(pk: int, now: datetime, step: int | None = None) -> Exception:
    """Why a conditional statement on device ``pk`` matched no row, as the error to raise."""
    state = (
        TOTPDevice.objects.filter(pk=pk)
        .values("failure_count", "locked_until", "last_used_step")
        .first()
    )
    if state is None:
        return exceptions.NotEnabled()
    lock = _lock_error(state["failure_count"], state["locked_until"], now, totp=step is not None)
    if lock is not None:
        return lock
    if step is not None and step <= state["last_used_step"]:
        return exceptions.TokenReused()
    return exceptions.InvalidToken()


def _wrong_code(device: TOTPDevice, now: datetime, request: Any) -> Exception:
    """Count one wrong code and set the lock it earns; return the error to answer with.

    If the row got locked meanwhile, nothing is counted and the error says it is locked.
    """
    *growing, (capped_at, cap) = lock_schedule()
    # The lock depends on the count before this failure (failure_count + 1 is the new count).
    lock = Case(
        *(When(failure_count=n - 1, then=Value(now + timedelta(seconds=s))) for n, s in growing),
        When(failure_count__gte=capped_at - 1, then=Value(now + timedelta(seconds=cap))),
        default=Value(None),
        output_field=DateTimeField(),
    )
    # locked_until is assigned before failure_count on purpose: MySQL and MariaDB evaluate SET
    # assignments left to right, each seeing the columns already assigned.
    row = TOTPDevice.objects.filter(unlocked(now, totp=False), pk=device.pk)
    if not row.update(locked_until=lock, failure_count=F("failure_count") + 1):
        return _refusal(device.pk, now)
    state = TOTPDevice.objects.filter(pk=device.pk).values("failure_count", "locked_until").first()
    if state is None:
        return exceptions.InvalidToken()
    user = device.user
    signals.send_on_commit(signals.totp_failed, user, request, failure_count=state["failure_count"])
    if state["locked_until"] is not None and state["locked_until"] > now:
        signals.send_on_commit(signals.totp_locked, user, request, **state)
        # Say at once that this failure started a lock, rather than on the next attempt.
        return exceptions.InvalidToken(locked_until=state["locked_until"], now=now)
    return exceptions.InvalidToken()


@sensitive_variables()
def _check_totp(
    device: TOTPDevice, code: str, now: datetime, action: Action, request: Any
) -> Accepted:
    _ensure_unlocked(device, now, totp=True)
    totp = device.totp()
    step = otp.matching_step(totp, code, totp.timecode(now), totp_settings.VALID_WINDOW)
    if step is None:
        raise _wrong_code(device, now, request)
    if step <= device.last_used_step:
        raise exceptions.TokenReused()
    accepted = Accepted(device, now, step)
    if not action(accepted):
        raise _refusal(device.pk, now, step)
    return accepted


@sensitive_variables()
def _check_recovery(
    device: TOTPDevice, digests: list[str], now: datetime, action: Action, request: Any
) -> Accepted:
    _ensure_unlocked(device, now, totp=False)
    open_row = TOTPDevice.objects.filter(unlocked(now, totp=False), pk=device.pk)
    candidates = RecoveryCode.objects.filter(user_id=device.user_id, digest__in=digests)
    with transaction.atomic():
        used = candidates.filter(Exists(open_row), used_at__isnull=True).update(used_at=now)
        # Using a recovery code also lifts the lock held after too many TOTP failures.
        accepted = Accepted(device, now)
        applied = bool(used) and bool(action(accepted))
        if used and not applied:
            transaction.set_rollback(True)  # the code stays unused: nothing was granted
    if used and not applied:
        raise _refusal(device.pk, now)
    if not used:
        if candidates.exists():
            raise exceptions.TokenReused(_("This recovery code has already been used."))
        raise _wrong_code(device, now, request)
    remaining = recovery.unused(device.user_id).count()
    signals.send_on_commit(signals.recovery_code_used, device.user, request, remaining=remaining)
    return accepted


@sensitive_variables()
def check(
    device: TOTPDevice,
    raw: str,
    *,
    now: datetime | None = None,
    request: Any = None,
    allow_recovery: bool = True,
    action: Action = record,
) -> Accepted:
    """Accept ``raw`` (a TOTP code, or a recovery code if allowed) for ``device`` once, or raise.

    On success ``action`` applies the result to the device's row and must report that it
    changed it; 0 means the row's state moved on (another request won) and the code is refused.
    """
    now = now or timezone.now()
    code = otp.parse_code(raw, device.digits)
    # Some imported recovery codes look like TOTP codes: recovery.lookup decides which is which.
    digests = (
        recovery.lookup(device.user_id, raw, totp_code=code is not None) if allow_recovery else None
    )
    if digests is not None:
        accepted = _check_recovery(device, digests, now, action, request)
    elif code is not None:
        accepted = _check_totp(device, code, now, action, request)
    else:
        message = _("Enter the %(digits)d-digit code from your authenticator app.")
        if allow_recovery:
            message = _(
                "Enter the %(digits)d-digit code from your authenticator app, or a recovery code."
            )
        raise exceptions.InvalidFormat(message % {"digits": device.digits})
    signals.send_on_commit(signals.totp_verified, device.user, request, method=accepted.method)
    return accepted
