"""The statements of the hot paths, written in SQL: reading the user's device, accepting a TOTP
code (with, on PostgreSQL, an opaque token's mark in the same statement), and the status row.
(The statement that reserves a guess is the guess limit's, in lockout.py.)

The ORM builds each statement anew for every request, and on this path building costs more than
the database takes to run it (docs/benchmarks.md). These send what the ORM would send. A code
is accepted for "a later step than the last one" (``verification.Accepted.row``; the guess
limit was applied before, when the guess was reserved), and an unused recovery code is
``recovery.unused``, written out; tests/test_statements.py holds the SQL and the ORM to the same
answers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache, partial
from typing import Any, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connections, models, router, transaction
from django.db.models.constants import OnConflict

from .models import RecoveryCode, TOTPDevice, VerifiedToken


def names(alias: str, model: type[models.Model]) -> tuple[str, dict[str, str]]:
    """The quoted name of ``model``'s table, and of each column by attribute name."""
    quote = connections[alias].ops.quote_name
    # A concrete field always has a column (the stubs allow None for other kinds of field).
    columns = {f.attname: quote(cast(str, f.column)) for f in model._meta.concrete_fields}
    return quote(model._meta.db_table), columns


def _first_device(
    sql_of: Callable[[str], str], params: list[Any], alias: str | None = None
) -> TOTPDevice | None:
    """The first device the SELECT ``sql_of(alias)`` finds, as a model (its fields converted)."""
    alias = alias or router.db_for_read(TOTPDevice)
    return next(iter(TOTPDevice.objects.db_manager(alias).raw(sql_of(alias), params)), None)


@lru_cache(maxsize=16)
def _select_sql(alias: str, secret: bool = True) -> str:
    table, c = names(alias, TOTPDevice)
    columns = [column for name, column in c.items() if secret or name != "secret"]
    return (
        f"SELECT {', '.join(columns)} FROM {table}"
        f" WHERE {c['user_id']} = %s AND {c['is_confirmed']} = %s ORDER BY {c['id']} LIMIT 1"
    )


_select_sql_without_secret = partial(_select_sql, secret=False)


def first_device(
    alias: str | None, user: AbstractBaseUser, *, confirmed: bool = True, secret: bool = True
) -> TOTPDevice | None:
    """The user's first confirmed device (should an administrator have added more), or with
    ``confirmed=False`` the pending one, read on ``alias`` (None: the router's choice).

    Without ``secret``, the secret is neither read nor decrypted (a deferred field): for what
    needs only the device's state, such as a login ticket.
    """
    sql_of = _select_sql if secret else _select_sql_without_secret
    device = _first_device(sql_of, [user.pk, confirmed], alias)
    if device is not None:
        device.user = cast(Any, user)  # any user model, not only django.contrib.auth's User
    return device


def confirmed_device(user: AbstractBaseUser, *, secret: bool = True) -> TOTPDevice | None:
    """The user's confirmed device (the first, should an administrator have added more)."""
    return first_device(None, user, secret=secret)


@lru_cache(maxsize=8)
def _status_sql(alias: str) -> str:
    table, c = names(alias, TOTPDevice)
    codes, r = names(alias, RecoveryCode)
    state = (
        "id",
        "is_confirmed",
        "confirmed_at",
        "last_used_at",
        "locked_until",
        "failure_count",
        "weak_secret",
    )
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
    device = _first_device(_status_sql, [user.pk])
    # The SELECT's extra column becomes an attribute of the model it returns.
    return None if device is None else (device, cast(Any, device).recovery_codes_remaining)


@lru_cache(maxsize=8)
def _accept_sql(alias: str) -> str:
    table, c = names(alias, TOTPDevice)
    return (
        f"UPDATE {table} SET {c['last_used_step']} = %s, {c['last_used_at']} = %s,"
        f" {c['use_count']} = {c['use_count']} + 1, {c['failure_count']} = 0,"
        f" {c['locked_until']} = NULL"
        f" WHERE {c['id']} = %s AND {c['last_used_step']} < %s"
    )


@lru_cache(maxsize=8)
def _mark_sql(alias: str) -> tuple[str, str]:
    """``INSERT INTO table (digest, user, device, verified_at)``, and the database's clause that
    replaces the mark a digest already has (PostgreSQL and SQLite: ON CONFLICT (digest) DO
    UPDATE; MySQL and MariaDB: ON DUPLICATE KEY UPDATE)."""
    table, quoted = names(alias, VerifiedToken)
    by_name = {field.name: field for field in VerifiedToken._meta.concrete_fields}
    fields = [by_name[name] for name in ("digest", "user", "device_id", "verified_at")]
    columns = [cast(str, field.column) for field in fields]
    # A digest stands for one token of one user: a new mark changes only the device and time
    # (no indexed column, so SQLite rewrites no index page and PostgreSQL can update in place).
    update = connections[alias].ops.on_conflict_suffix_sql(
        fields, OnConflict.UPDATE, columns[2:], columns[:1]
    )
    return f"INSERT INTO {table} ({', '.join(quoted[f.attname] for f in fields)})", update


@lru_cache(maxsize=8)
def _accept_and_mark_sql(alias: str) -> str:
    """PostgreSQL: the UPDATE, and the mark of the row it changed (none changed: no mark)."""
    table, c = names(alias, TOTPDevice)
    insert, update = _mark_sql(alias)
    return (
        f"WITH accepted AS ({_accept_sql(alias)} RETURNING {c['id']}, {c['user_id']})"
        f" {insert} SELECT %s, {c['user_id']}, {c['id']}, %s FROM accepted {update}"
    )


def marks_in_one_statement() -> bool:
    """Whether ``accept`` writes a token's mark in the accepting statement (PostgreSQL)."""
    alias = router.db_for_write(TOTPDevice)
    return alias == router.db_for_write(VerifiedToken) and connections[alias].vendor == "postgresql"


def _mark_statement(
    alias: str, digest: str, device: TOTPDevice, now: datetime
) -> tuple[str, list[Any]]:
    insert, update = _mark_sql(alias)
    at = connections[alias].ops.adapt_datetimefield_value(now)
    return f"{insert} VALUES (%s, %s, %s, %s) {update}", [digest, device.user_id, device.pk, at]


def mark(digest: str, device: TOTPDevice, now: datetime) -> None:
    """Mark the opaque token of ``digest`` as verified with ``device`` at ``now``."""
    alias = router.db_for_write(VerifiedToken)
    with connections[alias].cursor() as cursor:
        cursor.execute(*_mark_statement(alias, digest, device, now))


def accept(device: TOTPDevice, step: int, now: datetime, mark_digest: str | None = None) -> int:
    """Record a TOTP code of ``step`` accepted at ``now``: 1 if the row took it, 0 if its state
    moved on (a later or equal step used, or the row gone). The success resets the failure count
    and lifts the lock, the one its own reservation set included (lockout.py).

    With ``mark_digest``, the opaque token of that digest is marked as verified by this code in
    the same transaction (on PostgreSQL, the same statement): never a code used up without it.
    """
    alias = router.db_for_write(TOTPDevice)
    at = connections[alias].ops.adapt_datetimefield_value(now)
    params = [step, at, device.pk, step]
    if mark_digest is None:
        return _execute(alias, _accept_sql(alias), params)
    if marks_in_one_statement():
        return _execute(alias, _accept_and_mark_sql(alias), [*params, mark_digest, at])
    # Both statements prepared first: SQLite holds its one write lock from the UPDATE to the
    # commit, so nothing else runs in between. No savepoint: in a caller's transaction, joins it.
    mark_statement = _mark_statement(alias, mark_digest, device, now)
    with transaction.atomic(using=alias, savepoint=False), connections[alias].cursor() as cursor:
        cursor.execute(_accept_sql(alias), params)
        accepted = cursor.rowcount
        if accepted:
            cursor.execute(*mark_statement)
    return accepted


def _execute(alias: str, sql: str, params: list[Any]) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
