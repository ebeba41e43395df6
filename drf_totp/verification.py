"""Checking a code: the one path every code takes (verify, validate, disable, login).

Guarantees, enforced by the database so they hold across processes and hosts:

- a code is accepted only for a step later than the last accepted one, in the same conditional
  statement that records the success (no read-modify-write, no lock, no cache);
- while a user is locked, codes are not evaluated, and the failure counter does not grow;
- a failure is counted, and the lock it earns is set, by one conditional UPDATE that only an
  unlocked row passes, so parallel guesses cannot slip past a lock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db.models import Case, DateTimeField, F, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from . import exceptions, otp
from .lockout import lock_schedule
from .models import TOTPDevice
from .settings import totp_settings

Apply = Callable[[QuerySet[TOTPDevice], int, datetime], int]


def _unlocked(now: datetime, *, totp: bool = True) -> Q:
    """Rows that may have a code checked at ``now``."""
    gate = Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    if totp:
        gate &= Q(failure_count__lt=totp_settings.MAX_FAILURES)
    return gate


def ensure_unlocked(device: TOTPDevice, now: datetime) -> None:
    """Refuse before any evaluation when the loaded row is locked."""
    if device.failure_count >= totp_settings.MAX_FAILURES:
        raise exceptions.LockedOut()
    if device.locked_until is not None and device.locked_until > now:
        raise exceptions.Locked(device.locked_until, now)


def record_success(
    queryset: QuerySet[TOTPDevice], step: int, now: datetime, **changes: object
) -> int:
    """Record the accepted step and clear the failures; the default ``apply`` of ``check_code``."""
    return queryset.update(
        last_used_step=step, last_used_at=now, failure_count=0, locked_until=None, **changes
    )


def record_failure(device: TOTPDevice, now: datetime) -> None:
    """Count one wrong code and set the lock it earns, unless the row got locked meanwhile."""
    schedule = lock_schedule()
    *growing, (capped_at, cap) = schedule
    # The lock depends on the count before this failure (failure_count + 1 is the new count).
    lock = Case(
        *(When(failure_count=n - 1, then=Value(now + timedelta(seconds=s))) for n, s in growing),
        When(failure_count__gte=capped_at - 1, then=Value(now + timedelta(seconds=cap))),
        default=Value(None),
        output_field=DateTimeField(),
    )
    # locked_until is assigned before failure_count on purpose: MySQL and MariaDB evaluate SET
    # assignments left to right, each seeing the columns already assigned.
    updated = TOTPDevice.objects.filter(_unlocked(now, totp=False), pk=device.pk).update(
        locked_until=lock, failure_count=F("failure_count") + 1
    )
    if not updated:
        raise refusal(device.pk, now)


def refusal(pk: int, now: datetime, step: int | None = None) -> Exception:
    """Why a conditional statement on device ``pk`` matched no row, as the error to raise."""
    state = (
        TOTPDevice.objects.filter(pk=pk)
        .values("failure_count", "locked_until", "last_used_step")
        .first()
    )
    if state is None:
        return exceptions.NotEnabled()
    if state["locked_until"] is not None and state["locked_until"] > now:
        return exceptions.Locked(state["locked_until"], now)
    if state["failure_count"] >= totp_settings.MAX_FAILURES:
        return exceptions.LockedOut()
    if step is not None and step <= state["last_used_step"]:
        return exceptions.TokenReused()
    return exceptions.InvalidToken()


def check_code(
    device: TOTPDevice,
    code: str,
    *,
    now: datetime | None = None,
    apply: Apply = record_success,
) -> int:
    """Accept ``code`` for ``device`` once, or raise; return the step it matched.

    ``code`` must already be parsed (``otp.parse_code``). On a match, ``apply`` runs on the
    device's row narrowed to "unlocked, and the step not used yet", and must
    return the number of rows it changed; 0 means another request won the race.
    """
    now = now or timezone.now()
    ensure_unlocked(device, now)
    totp = device.totp()
    step = otp.matching_step(totp, code, totp.timecode(now), totp_settings.VALID_WINDOW)
    if step is None:
        record_failure(device, now)
        raise exceptions.InvalidToken()
    if step <= device.last_used_step:
        raise exceptions.TokenReused()
    gated = TOTPDevice.objects.filter(_unlocked(now), pk=device.pk, last_used_step__lt=step)
    if not apply(gated, step, now):
        raise refusal(device.pk, now, step)
    return step


def parse(device: TOTPDevice, raw: str) -> str:
    """The code in ``raw`` for this device, or a 400 on the ``token`` field."""
    code = otp.parse_code(raw, device.digits)
    if code is None:
        raise exceptions.InvalidFormat(
            _("Enter the %(digits)d-digit code from your authenticator app.") % {"digits": device.digits}
        )
    return code
