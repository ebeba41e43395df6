"""The guess limit: which device rows may have a code checked, the statement that reserves a
guess before any code is computed, the errors a refused guess gets, and the lock state that
status reports.

After ``TOTP_FREE_FAILURES`` failures, each further failure locks for ``TOTP_LOCKOUT_SECONDS``,
doubled with every failure and capped at ``TOTP_LOCKOUT_MAX_SECONDS``. After
``TOTP_MAX_FAILURES`` consecutive failures, TOTP codes stay refused until a recovery code is
used or an administrator unlocks the user.

Reserve, then evaluate: one conditional statement, that only an unlocked row passes, counts the
guess (``failure_count + 1``) and sets the lock that this failure earns, before the code is
computed. A wrong code then needs no further write; a right one is accepted by the statement
that records it, which also resets the count and the lock. However many requests arrive
together, in however many processes, each evaluated code was counted first, and a request that
dies in between leaves a counted failure. On PostgreSQL and SQLite (3.35 and later) the
reservation is also the read of the device (``UPDATE ... RETURNING``); MariaDB and MySQL have no
``UPDATE ... RETURNING``, so there it is the UPDATE and a SELECT of the row in one short
transaction, after a read of the device's id.

The rule of which rows may have a code checked is written three times, side by side below: in
Python (``refusal``), as an ORM filter (``unlocked``) and as SQL (``_unlocked_sql``);
tests/test_lockout_rule.py holds the three to one table of cases.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connections, router, transaction
from django.db.models import Case, F, Q, Value, When

from . import exceptions
from .models import TOTPDevice
from .settings import totp_settings
from .statements import first_device, names


def lock_seconds(failures: int) -> int:
    """Seconds of lock that the ``failures``-th consecutive failure earns (0: none)."""
    extra = failures - totp_settings.FREE_FAILURES
    if extra <= 0:
        return 0
    cap = totp_settings.LOCKOUT_MAX_SECONDS
    base = totp_settings.LOCKOUT_SECONDS
    # Shift only while it can stay under the cap, so huge counts never build huge integers.
    if extra > cap.bit_length() + 1:
        return cap
    return min(base << (extra - 1), cap)


def lock_schedule() -> list[tuple[int, int]]:
    """``(failures, seconds)`` for each count whose lock is below the cap, then the first capped count.

    The last entry's duration also applies to every higher count.
    """
    schedule = []
    free, cap = totp_settings.FREE_FAILURES, totp_settings.LOCKOUT_MAX_SECONDS
    for failures in range(free + 1, free + cap.bit_length() + 3):
        seconds = lock_seconds(failures)
        schedule.append((failures, seconds))
        if seconds >= cap:
            break
    return schedule


# --- The rule: which rows may have a code checked at ``now`` ---------------------------------
# Past the failure limit only recovery codes (``totp=False``) are checked.


def refusal(
    failure_count: int, locked_until: datetime | None, now: datetime, *, totp: bool
) -> Exception | None:
    """The error for a row in this state, or None if a code may be checked (in Python)."""
    # Past the failure limit, waiting does not help TOTP: say so rather than "retry later".
    if totp and failure_count >= totp_settings.MAX_FAILURES:
        return exceptions.LockedOut()
    if locked_until is not None and locked_until > now:
        return exceptions.Locked(locked_until, now)
    return None


def unlocked(now: datetime, *, totp: bool) -> Q:
    """The rows that may have a code checked (as an ORM filter)."""
    gate = Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    if totp:
        gate &= Q(failure_count__lt=totp_settings.MAX_FAILURES)
    return gate


def _unlocked_sql(c: dict[str, str], *, totp: bool) -> str:
    """The rows that may have a code checked (as SQL); parameters from ``_unlocked_params``."""
    gate = f"({c['locked_until']} IS NULL OR {c['locked_until']} <= %s)"
    if totp:
        gate += f" AND {c['failure_count']} < %s"
    return gate


def _unlocked_params(at: Any, *, totp: bool) -> list[Any]:
    return [at, totp_settings.MAX_FAILURES] if totp else [at]


# --- The state a client and an administrator see ----------------------------------------------


def is_locked(device: TOTPDevice, now: datetime, *, totp: bool = True) -> bool:
    """Whether ``device`` refuses codes at ``now`` (TOTP codes unless ``totp`` is False)."""
    return refusal(device.failure_count, device.locked_until, now, totp=totp) is not None


def locked_until(device: TOTPDevice, now: datetime) -> datetime | None:
    """The end of the lock that holds at ``now``, if one does."""
    if device.locked_until is not None and device.locked_until > now:
        return device.locked_until
    return None


def locked_out(device: TOTPDevice) -> bool:
    """Past the failure limit: TOTP codes are refused until a recovery code or an unlock."""
    return device.failure_count >= totp_settings.MAX_FAILURES


# --- The reservation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """The device row a code is for: the one of primary key ``pk``, or else the user's first
    device that is confirmed (``confirmed``) or pending."""

    user: AbstractBaseUser
    pk: int | None = None
    confirmed: bool = True


@dataclass(frozen=True)
class Reservation:
    """The outcome of ``reserve``: ``device`` is the row as the reserving statement left it
    (``reserved``), or as found when no guess could be reserved (None: no such row)."""

    device: TOTPDevice | None
    reserved: bool


def _returning(alias: str) -> bool:
    """Whether the database has ``UPDATE ... RETURNING`` (PostgreSQL; SQLite from 3.35)."""
    vendor = connections[alias].vendor
    return vendor == "postgresql" or (vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 35))


@lru_cache(maxsize=32)
def _reserve_sql(alias: str, by_pk: bool, digits: bool, totp: bool, schedule: int) -> str:
    """``UPDATE device SET locked_until = <the lock this failure earns>, failure_count + 1``
    on the wanted row if it is unlocked (and has ``digits``), returning the row where the
    database can. The lock is a CASE over the count before this failure, one WHEN for each of
    the ``schedule`` entries of ``lock_schedule`` (the last one: that count and higher)."""
    table, c = names(alias, TOTPDevice)
    count = c["failure_count"]
    whens = [f"WHEN {count} = %s THEN %s" for _ in range(schedule - 1)]
    whens.append(f"WHEN {count} >= %s THEN %s")
    if by_pk:
        which = f"{c['id']} = %s"
    else:
        which = (
            f"{c['id']} = (SELECT {c['id']} FROM {table}"
            f" WHERE {c['user_id']} = %s AND {c['is_confirmed']} = %s"
            f" ORDER BY {c['id']} LIMIT 1)"
        )
    if digits:
        which += f" AND {c['digits']} = %s"
    # locked_until is assigned before failure_count on purpose: MySQL and MariaDB evaluate SET
    # assignments left to right, each seeing the columns already assigned.
    sql = (
        f"UPDATE {table} SET {c['locked_until']} = CASE {' '.join(whens)} ELSE NULL END,"
        f" {count} = {count} + 1 WHERE {which} AND {_unlocked_sql(c, totp=totp)}"
    )
    if _returning(alias):
        sql += f" RETURNING {', '.join(c.values())}"
    return sql


@lru_cache(maxsize=8)
def _row_sql(alias: str) -> str:
    table, c = names(alias, TOTPDevice)
    return f"SELECT {', '.join(c.values())} FROM {table} WHERE {c['id']} = %s"


def reserve(row: Row, now: datetime, *, totp: bool, digits: int | None = None) -> Reservation:
    """Count one guess on ``row`` before its code is computed, if the row is unlocked at ``now``
    (``totp``: for a TOTP code) and, if given, has ``digits``; set the lock this failure earns.

    A success undoes the reservation by resetting the count (``verification.Accepted``).
    """
    alias = router.db_for_write(TOTPDevice)
    adapt = connections[alias].ops.adapt_datetimefield_value
    at = adapt(now)
    schedule = lock_schedule()
    *growing, (capped_at, cap) = schedule
    # The lock depends on the count before this failure (failure_count + 1 is the new count).
    locks: list[Any] = []
    for failures, seconds in growing:
        locks += [failures - 1, adapt(now + timedelta(seconds=seconds))]
    locks += [capped_at - 1, adapt(now + timedelta(seconds=cap))]
    digit_params = [] if digits is None else [digits]
    returning = _returning(alias)
    if row.pk is None and not returning:
        # MariaDB and MySQL: the id first (a reservation by id cannot wait on another row).
        found = first_device(alias, row.user, confirmed=row.confirmed)
        if found is None:
            return Reservation(None, False)
        row = Row(row.user, pk=found.pk)
    which = [row.pk] if row.pk is not None else [row.user.pk, row.confirmed]
    sql = _reserve_sql(alias, row.pk is not None, digits is not None, totp, len(schedule))
    params = [*locks, *which, *digit_params, *_unlocked_params(at, totp=totp)]
    if returning:
        reserved = _device(alias, sql, params)
        if reserved is not None:
            return Reservation(_owned(reserved, row.user), True)
        # One read says why not (no such row, other digits, or a lock).
        if row.pk is None:
            found = first_device(alias, row.user, confirmed=row.confirmed)
        else:
            found = _device(alias, _row_sql(alias), [row.pk])
        return Reservation(None if found is None else _owned(found, row.user), False)
    # The row as this UPDATE left it, read in its transaction: the lock it holds until the
    # commit keeps any other request from changing the row in between.
    with transaction.atomic(using=alias, savepoint=False):
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            taken = cursor.rowcount == 1
        found = _device(alias, _row_sql(alias), [row.pk])
    return Reservation(None if found is None else _owned(found, row.user), taken)


def _device(alias: str, sql: str, params: list[Any]) -> TOTPDevice | None:
    # Every row is fetched: SQLite ends a statement (and commits its write) once it is read out.
    rows = list(TOTPDevice.objects.db_manager(alias).raw(sql, params))
    return rows[0] if rows else None


def _owned(device: TOTPDevice, user: AbstractBaseUser) -> TOTPDevice:
    device.user = user  # type: ignore[assignment]  # any user model, not only auth.User
    return device


def release(device: TOTPDevice) -> None:
    """Undo the reservation that left ``device`` in its state, for a code that was right but
    not accepted: one failure less, and the lock it set (if it set one, and it still holds)
    lifted. Nothing to undo once a success reset the count (the use count moved on)."""
    changes: dict[str, Any] = {"failure_count": F("failure_count") - 1}
    if device.locked_until is not None:
        # A lock set by another reservation since stays (none could be set while this one held).
        changes["locked_until"] = Case(
            When(locked_until=device.locked_until, then=Value(None)),
            default=F("locked_until"),
        )
    TOTPDevice.objects.filter(pk=device.pk, use_count=device.use_count, failure_count__gt=0).update(
        **changes
    )
