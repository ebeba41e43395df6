"""PostgreSQL at scale: validate with 1,000 devices, then with 1,000,000, and the query plans.

Users, tokens and devices are made by ``INSERT ... SELECT generate_series``; every device holds
the same ciphertext of one secret (a device's cost does not depend on its secret). At each
scale the same number of users is sent: all 1,000 at first, then 1,000 spread evenly over the
1,000,000, so that their rows are spread over the table and its indexes as real users' are.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench.session import VALIDATE, Bench, Kind, Row, summarize

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
# The codes of T-1, T and T+1 are all accepted during T: three fresh codes per user a step.
SCALE_VALIDATE = Kind("validate", "POST otp/validate/", VALIDATE, "code", steps=(-1, 0, 1))


def add_users(first: int, last: int, ciphertext: str, password: str) -> None:
    """Users ``scale<first>`` .. ``scale<last>``, each with a token and a confirmed device."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,
                                   email, is_staff, is_active, date_joined)
            SELECT %s, false, 'scale' || lpad(g::text, 8, '0'), '', '', '', false, true, now()
            FROM generate_series(%s, %s) AS g
            """,
            [password, first, last],
        )
        cursor.execute(
            """
            INSERT INTO authtoken_token (key, user_id, created)
            SELECT left(md5(u.id::text || 'a') || md5(u.id::text || 'b'), 40), u.id, now()
            FROM auth_user u
            WHERE u.username >= 'scale' || lpad(%s::text, 8, '0')
              AND u.username <= 'scale' || lpad(%s::text, 8, '0')
            """,
            [first, last],
        )
        cursor.execute(
            """
            INSERT INTO drf_totp_totpdevice (user_id, name, secret, digits, period, algorithm,
                is_confirmed, created_at, confirmed_at, last_used_step, use_count, failure_count)
            SELECT u.id, 'default', %s, 6, 30, 'SHA1', true, now(), now(), 0, 0, 0
            FROM auth_user u
            WHERE u.username >= 'scale' || lpad(%s::text, 8, '0')
              AND u.username <= 'scale' || lpad(%s::text, 8, '0')
            """,
            [ciphertext, first, last],
        )


def vacuum_analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("auth_user", "authtoken_token", "drf_totp_totpdevice"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def members(user_ids: list[int]) -> list[Any]:
    from django.contrib.auth import get_user_model

    from bench.seed import Member
    from drf_totp.models import TOTPDevice

    tokens = dict(
        get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "auth_token__key")
    )
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    devices = TOTPDevice.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "pk", "confirmed_at"
    )
    return [
        Member(user_id, names[user_id], tokens[user_id], SECRET, pk, confirmed_at)
        for user_id, pk, confirmed_at in sorted(devices)
    ]


def plans(member: Any) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL one validate runs, as captured from the request."""
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.pool import Pool, current_step

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
    with transaction.atomic(), connection.cursor() as cursor:
        # The UPDATE matches only while the step is fresh: make it so, and roll back after.
        cursor.execute(
            "UPDATE drf_totp_totpdevice SET last_used_step = 0 WHERE id = %s", [member.device_id]
        )
        for sql in queries:
            if "drf_totp_" in sql or "authtoken_token" in sql:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                out[sql] = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return out


def measure_at(
    args: argparse.Namespace, server: Any, user_ids: list[int], devices: int
) -> dict[str, Any]:
    from bench.pool import PERIOD, seconds_left_in_step

    bench = Bench(args, members(user_ids))
    row = Row("validate", f"validate, {devices:,} devices")
    for rep in range(args.reps):
        record = bench.run(server, SCALE_VALIDATE)
        row.runs.append(record)
        print(
            f"  [scale {devices:,}] validate rep {rep + 1}: {record['rps']:8.1f}/s "
            f"p50 {record['p50_ms']:6.2f} ms p99 {record['p99_ms']:6.2f} ms "
            f"errors {record['errors']} other-cpu {record['foreign_cores']}",
            flush=True,
        )
    # A user of this scale that no run used in this step, for the plans (the runs send codes of
    # the next step too: a fast run may use every user up to it, so wait for a step that is free).
    middle = len(bench.pool.members) // 2  # a row from the middle of the table
    while True:
        if seconds_left_in_step() < 2:
            time.sleep(seconds_left_in_step() + 0.2)
        bench.pool.refresh()
        step = int(time.time()) // PERIOD
        ordered = bench.pool.members[middle:] + bench.pool.members[:middle]
        spare = next((m for m in ordered if m.last_used_step < step), None)
        if spare is not None:
            break
        time.sleep(seconds_left_in_step() + 0.2)
    summary = summarize(row)
    summary["devices"] = devices
    summary["plans"] = plans(spare)
    return summary


def scale(args: argparse.Namespace) -> dict[str, Any]:
    import django

    from bench import seed
    from bench.load import Server

    seed.recreate_database(args.database_url)
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from drf_totp import crypto

    if connection.vendor != "postgresql":
        raise SystemExit("the scale test runs on PostgreSQL only")
    seed.migrate()
    ciphertext = crypto.encrypt(SECRET)
    password = seed.password_hash()
    small = 1000
    add_users(1, small, ciphertext, password)
    vacuum_analyze()
    user_ids = list(get_user_model().objects.order_by("pk").values_list("pk", flat=True))
    server = Server(args.database_url, args.work_path / "gunicorn-scale.log")
    results = []
    try:
        server.wait_ready(members(user_ids[:1])[0].token)
        results.append(measure_at(args, server, user_ids, small))
        started = time.monotonic()
        add_users(small + 1, args.scale, ciphertext, password)
        vacuum_analyze()
        seeded = time.monotonic() - started
        print(f"  [scale] seeded {args.scale - small:,} more devices in {seeded:.0f} s", flush=True)
        all_ids = list(get_user_model().objects.order_by("pk").values_list("pk", flat=True))
        spread = all_ids[:: len(all_ids) // small][:small]
        results.append(measure_at(args, server, spread, args.scale))
    finally:
        server.stop()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('drf_totp_totpdevice'))")
        size = cursor.fetchone()[0]
    return {"database": "postgres-scale", "device_table_size": size, "results": results}
