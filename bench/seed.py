"""Fresh benchmark databases and their users: each with a drf-totp login token and a confirmed
device.

Only databases named ``drf_totp_bench*`` (or the bench's own SQLite file) are ever dropped.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

BENCH_DB_PREFIX = "drf_totp_bench"
PASSWORD = "bench-password"
RECOVERY_CODES_PER_USER = 10


@dataclass
class Member:
    """A seeded user, as the load generator needs it."""

    user_id: int
    username: str
    token: str
    secret: str  # base32, as the authenticator app has it
    device_id: int
    confirmed_at: datetime
    last_used_step: int = 0
    use_count: int = 0


def recreate_database(url: str) -> None:
    """Drop and create the database of ``url`` (before Django connects to it)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = Path(parts.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name != "bench.sqlite3":
            raise SystemExit(f"refusing to delete {path}: not the bench's SQLite file")
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    name = parts.path.lstrip("/")
    if not name.startswith(BENCH_DB_PREFIX):
        raise SystemExit(
            f"refusing to drop database {name!r}: its name must start {BENCH_DB_PREFIX}"
        )
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def migrate(alias: str = "default") -> None:
    from django.core.management import call_command

    call_command("migrate", database=alias, verbosity=0, interactive=False)


def password_hash() -> str:
    from django.contrib.auth.hashers import make_password

    # One hash for every user: seeding stays fast, and a login checks it as it would any other.
    return make_password(PASSWORD)


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def seed_users(count: int, *, batch: int = 2000) -> list[Member]:
    """``count`` users, each with a login token of drf-totp (``TOTP_LOGIN_CREDENTIAL =
    "authtoken"``), a confirmed device of its own secret, and recovery codes."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from drf_totp.authentication import key_digest, new_key
    from drf_totp.models import LoginToken, RecoveryCode, TOTPDevice

    user_model = get_user_model()
    hashed = password_hash()
    now = timezone.now()
    members: list[Member] = []
    for start in range(0, count, batch):
        size = min(batch, count - start)
        users = user_model.objects.bulk_create(
            [
                user_model(
                    username=f"bench{start + i:07d}",
                    email=f"bench{start + i:07d}@example.com",
                    password=hashed,
                )
                for i in range(size)
            ]
        )
        keys = [new_key() for _ in users]
        LoginToken.objects.bulk_create(
            [
                LoginToken(user=user, digest=key_digest(key), created_at=now)
                for user, key in zip(users, keys, strict=True)
            ]
        )
        plain = [new_secret() for _ in users]
        devices = TOTPDevice.objects.bulk_create(
            [
                TOTPDevice(
                    user=user,
                    secret=secret,
                    is_confirmed=True,
                    created_at=now,
                    confirmed_at=now,
                )
                for user, secret in zip(users, plain, strict=True)
            ]
        )
        RecoveryCode.objects.bulk_create(
            [
                RecoveryCode(user=user, digest=secrets.token_hex(32), created_at=now)
                for user in users
                for _ in range(RECOVERY_CODES_PER_USER)
            ]
        )
        for user, key, secret, device in zip(users, keys, plain, devices, strict=True):
            members.append(
                Member(user.pk, user.username, key, secret, device.pk, device.confirmed_at)
            )
    return members


def settle(alias: str = "default") -> None:
    """Let the database finish the seeding's work before anything is measured: statistics, and
    the seeded pages written out (a checkpoint), so no run pays for them."""
    from django.db import connections

    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE")
            cursor.execute("CHECKPOINT")
        else:
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
