"""The statements of the hot paths, written in SQL: reading the user's device, accepting a TOTP
code (with, on PostgreSQL, an opaque token's mark in the same statement), and the status row.

The ORM builds each statement anew for every request, and on this path building costs more than
the database takes to run it (docs/benchmarks.md). These send what the ORM would send. The rule
of which rows may accept a code is ``verification.unlocked`` plus "a later step than the last
one", and an unused recovery code is ``recovery.unused``, written out; tests/test_statements.py
holds the SQL and the ORM to the same answers.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connections, models, router

from .models import RecoveryCode, TOTPDevice, VerifiedToken
from .settings import totp_settings


def _names(alias: str, model: type[models.Model]) -> tuple[str, dict[str, str]]:
    """The quoted name of ``model``'s table, and of each column by attribute name."""
    quote = connections[alias].ops.quote_name
    # A concrete field always has a column (the stubs allow None for other kinds of field).
    columns = {f.attname: quote(cast(str, f.column)) for f in model._meta.concrete_fields}
    return quote(model._meta.db_table), columns


@lru_cache(maxsize=8)
def _select_sql(alias: str) -> str:
    table, c = _names(alias, TOTPDevice)
    return (
        f"SELECT {', '.join(c.values())} FROM {table}"
        f" WHERE {c['user_id']} = %s AND {c['is_confirmed']} = %s ORDER BY {c['id']} LIMIT 1"
    )


def confirmed_device(user: AbstractBaseUser) -> TOTPDevice | None:
    """The user's confirmed device (the first, should an administrator have added more)."""
    alias = router.db_for_read(TOTPDevice)
    rows = TOTPDevice.objects.db_manager(alias).raw(_select_sql(alias), [user.pk, True])
    device = next(iter(rows), None)
    if device is not None:
        device.user = user
    return device


@lru_cache(maxsize=8)
def _status_sql(alias: str) -> str:
    table, c = _names(alias, TOTPDevice)
    codes, r = _names(alias, RecoveryCode)
    state = ("id", "is_confirmed", "confirmed_at", "last_used_at", "locked_until", "failure_count")
    unused = (
        f"SELECT COUNT(*) FROM {codes}"
        f" WHERE {codes}.{r['user_id']} = {table}.{c['user_id']} AND {r['used_at']} IS NULL"
    )
    return (
        f"SELECT {', '.join(c[name] for name in state)}, ({unused}) AS recovery_codes_remaining"
        f" FROM {table} WHERE {c['user_id']} = %s"
        f" ORDER BY {c['is_confirmed']} DESC, {c['id']} LIMIT 1"
    )


def status_device(user: AbstractBaseUser) -> tuple[TOTPDevice, int] | None:
    """The user's device as ``status`` reports it (a confirmed one first) and the user's count of
    unused recovery codes, in one read; the device's secret is not read."""
    alias = router.db_for_read(TOTPDevice)
    rows = TOTPDevice.objects.db_manager(alias).raw(_status_sql(alias), [user.pk])
    device = next(iter(rows), None)
    return None if device is None else (device, device.recovery_codes_remaining)


@lru_cache(maxsize=8)
def _accept_sql(alias: str) -> str:
    table, c = _names(alias, TOTPDevice)
    return (
        f"UPDATE {table} SET {c['last_used_step']} = %s, {c['last_used_at']} = %s,"
        f" {c['use_count']} = {c['use_count']} + 1, {c['failure_count']} = 0,"
        f" {c['locked_until']} = NULL"
        f" WHERE {c['id']} = %s AND {c['last_used_step']} < %s"
        f" AND ({c['locked_until']} IS NULL OR {c['locked_until']} <= %s)"
        f" AND {c['failure_count']} < %s"
    )


@lru_cache(maxsize=8)
def _accept_and_mark_sql(alias: str) -> str:
    """PostgreSQL: the UPDATE, and the mark upserted for the row it changed (none: no mark)."""
    table, c = _names(alias, TOTPDevice)
    marks, m = _names(alias, VerifiedToken)
    columns = [m["digest"], m["user_id"], m["device_id"], m["verified_at"]]
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in columns[1:])
    return (
        f"WITH accepted AS ({_accept_sql(alias)} RETURNING {c['id']}, {c['user_id']})"
        f" INSERT INTO {marks} ({', '.join(columns)})"
        f" SELECT %s, {c['user_id']}, {c['id']}, %s FROM accepted"
        f" ON CONFLICT ({m['digest']}) DO UPDATE SET {updates}"
    )


def marks_in_one_statement() -> bool:
    """Whether ``accept`` can write a token's mark in the accepting statement (PostgreSQL)."""
    alias = router.db_for_write(TOTPDevice)
    return alias == router.db_for_write(VerifiedToken) and connections[alias].vendor == "postgresql"


def accept(device: TOTPDevice, step: int, now: datetime, mark: str | None = None) -> int:
    """Record a TOTP code of ``step`` accepted at ``now``: 1 if the row took it, 0 if its state
    moved on (a later or equal step used, or a lock). The success resets the failure count.

    ``mark``: the digest of an opaque token to mark as verified by this code, only where
    ``marks_in_one_statement()``.
    """
    alias = router.db_for_write(TOTPDevice)
    connection = connections[alias]
    at = connection.ops.adapt_datetimefield_value(now)
    params = [step, at, device.pk, step, at, totp_settings.MAX_FAILURES]
    sql = _accept_sql(alias)
    if mark is not None:
        sql = _accept_and_mark_sql(alias)
        params += [mark, at]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
