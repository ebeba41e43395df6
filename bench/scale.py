"""PostgreSQL at scale: validate against 1,000 devices and against 1,000,000, and the plans.

Two databases are seeded, one with 1,000 users and one with 1,000,000, by ``INSERT ... SELECT
generate_series``: every user has a login token of drf-totp and a confirmed device, and every device holds the
same ciphertext of one secret (a device's cost does not depend on its secret). Each is served by
its own gunicorn, and their runs alternate (1,000, 1,000,000, 1,000,000, 1,000, ...), so that
whatever the machine does meanwhile falls on both alike. At each scale 1,000 users send codes:
all of them at first, and at 1,000,000 users spread evenly over the table, so that their rows
lie all over the table and its indexes, as real users' do.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from bench.session import VALIDATE, Bench, Kind, Row, summarize

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
# The codes of T-1, T and T+1 are all accepted during T: three fresh codes per user a step.
SCALE_VALIDATE = Kind("validate", "POST otp/validate/", VALIDATE, "code", steps=(-1, 0, 1))
SMALL = 1000
# Django's alias of each scale's database (bench/settings.py): "small" holds 1,000 devices.
ALIASES = ("small", "default")

_active: ContextVar[str | None] = ContextVar("bench_scale_alias", default=None)


class Router:
    """Sends the bench's own queries to the database of the scale at hand (``using``)."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return _active.get()

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return _active.get()


@contextmanager
def using(alias: str) -> Iterator[None]:
    token = _active.set(alias)
    try:
        yield
    finally:
        _active.reset(token)


# A user's token key, from its id alone (so no key need be kept): drf-totp's prefix, then 64
# hex digits. The same in SQL (KEY_SQL, of ``u.id``) and in Python (``key``).
KEY_SQL = "'totp_' || md5(u.id::text || 'a') || md5(u.id::text || 'b')"


def key(user_id: int) -> str:
    from drf_totp.authentication import KEY_PREFIX

    halves = (hashlib.md5(f"{user_id}{half}".encode()).hexdigest() for half in "ab")
    return KEY_PREFIX + "".join(halves)


def add_users(alias: str, count: int, ciphertext: str, password: str) -> None:
    """Users ``scale1`` .. ``scale<count>``, each with a token and a confirmed device."""
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,
                                   email, is_staff, is_active, date_joined)
            SELECT %s, false, 'scale' || lpad(g::text, 8, '0'), '', '', '', false, true, now()
            FROM generate_series(1, %s) AS g
            """,
            [password, count],
        )
        # drf-totp's login tokens: the digest (SHA-256 hex) of each user's key (``key``).
        cursor.execute(
            f"""
            INSERT INTO drf_totp_logintoken (user_id, digest, created_at)
            SELECT u.id, encode(sha256(convert_to({KEY_SQL}, 'UTF8')), 'hex'), now()
            FROM auth_user u
            """
        )
        cursor.execute(
            """
            INSERT INTO drf_totp_totpdevice (user_id, name, secret, digits, period, algorithm,
                is_confirmed, created_at, confirmed_at, last_used_step, use_count, failure_count,
                weak_secret)
            SELECT u.id, 'default', %s, 6, 30, 'SHA1', true, now(), now(), 0, 0, 0, false
            FROM auth_user u
            """,
            [ciphertext],
        )


def members(user_ids: list[int]) -> list[Any]:
    from django.contrib.auth import get_user_model

    from bench.seed import Member
    from drf_totp.models import TOTPDevice

    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    devices = TOTPDevice.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "pk", "confirmed_at"
    )
    return [
        Member(user_id, names[user_id], key(user_id), SECRET, pk, confirmed_at)
        for user_id, pk, confirmed_at in sorted(devices)
    ]


def plans(alias: str, member: Any) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL one validate runs, as captured from the request."""
    from django.db import connections, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.pool import Pool, current_step

    connection = connections[alias]
    code = Pool([member]).code(member, current_step())
    with CaptureQueriesContext(connection) as captured:
        response = Client().post(
            VALIDATE,
            json.dumps({"token": code}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {member.token}",
        )
    if response.status_code != 200:
        raise SystemExit(f"validate for the plans: {response.status_code} {response.content!r}")
    queries = [q["sql"] for q in captured.captured_queries]
    out = {}
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        # The UPDATE matches only while the step is fresh: make it so, and roll back after.
        cursor.execute(
            "UPDATE drf_totp_totpdevice SET last_used_step = 0 WHERE id = %s", [member.device_id]
        )
        for sql in queries:
            if "drf_totp_" in sql:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                out[sql] = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True, using=alias)
    return out


def spare_member(bench: Bench) -> Any:
    """A user that no run used in the current step, for the plans (the runs send codes of the
    next step too: a fast run may use every user up to it, so wait for a step that has one)."""
    from bench.pool import PERIOD, seconds_left_in_step

    middle = len(bench.pool.members) // 2  # a row from the middle of the table
    while True:
        if seconds_left_in_step() < 2:
            time.sleep(seconds_left_in_step() + 0.2)
        bench.pool.refresh()
        step = int(time.time()) // PERIOD
        ordered = bench.pool.members[middle:] + bench.pool.members[:middle]
        spare = next((m for m in ordered if m.last_used_step < step), None)
        if spare is not None:
            return spare
        time.sleep(seconds_left_in_step() + 0.2)


def seed_scale(alias: str, devices: int) -> None:
    from bench import seed
    from drf_totp import crypto

    seed.migrate(alias)
    add_users(alias, devices, crypto.encrypt(SECRET), seed.password_hash())
    seed.settle(alias)


def scale(args: argparse.Namespace) -> dict[str, Any]:
    import django

    from bench import seed
    from bench.load import Server

    urls = {"small": f"{args.database_url}_small", "default": args.database_url}
    for url in urls.values():
        seed.recreate_database(url)
    os.environ["BENCH_SMALL_DATABASE_URL"] = urls["small"]
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connections

    if connections["default"].vendor != "postgresql":
        raise SystemExit("the scale test runs on PostgreSQL only")
    devices = {"small": SMALL, "default": args.scale}
    started = time.monotonic()
    for alias in ALIASES:
        seed_scale(alias, devices[alias])
    print(f"  [scale] seeded {SMALL + args.scale:,} devices in {time.monotonic() - started:.0f} s")
    benches, rows, servers = {}, {}, {}
    for alias in ALIASES:
        with using(alias):
            ids = list(get_user_model().objects.order_by("pk").values_list("pk", flat=True))
            benches[alias] = Bench(args, members(ids[:: len(ids) // SMALL][:SMALL]))
        rows[alias] = Row("validate", f"validate, {devices[alias]:,} devices")
    try:
        for alias in ALIASES:
            log = args.work_path / f"gunicorn-scale-{alias}.log"
            servers[alias] = Server(urls[alias], log)
            servers[alias].wait_ready(benches[alias].pool.members[0].token)
            with using(alias):  # one unrecorded run each: caches, connections, the database
                benches[alias].run_once(servers[alias].url, SCALE_VALIDATE)
        for rep in range(args.reps):
            for alias in ALIASES if rep % 2 == 0 else ALIASES[::-1]:
                with using(alias):
                    record = benches[alias].run(servers[alias], SCALE_VALIDATE)
                rows[alias].runs.append(record)
                print(
                    f"  [scale {devices[alias]:,}] validate rep {rep + 1}: "
                    f"{record['rps']:8.1f}/s p50 {record['p50_ms']:6.2f} ms "
                    f"p99 {record['p99_ms']:6.2f} ms errors {record['errors']} "
                    f"other-cpu {record['foreign_cores']}",
                    flush=True,
                )
    finally:
        for server in servers.values():
            server.stop()
    results = []
    for alias in ALIASES:
        with using(alias):
            summary = summarize(rows[alias])
            summary["devices"] = devices[alias]
            summary["plans"] = plans(alias, spare_member(benches[alias]))
        results.append(summary)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('drf_totp_totpdevice'))")
        size = cursor.fetchone()[0]
    return {"database": "postgres-scale", "device_table_size": size, "results": results}
