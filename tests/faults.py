"""Servers a fault test can break: a throwaway redis-server of the test's own, and the test's own
PostgreSQL connections (never the shared servers themselves).
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time

import pytest
import redis
from django.db import connection


def free_port() -> int:
    """A loopback port nothing listens on (the kernel's pick, released at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A redis-server on a free loopback port, with nothing saved to disk; ``stop()`` and
    ``start()`` it at will (it keeps its port). It wants a password, which ``url`` carries, so a
    test can check that the password never reaches a log."""

    def __init__(self) -> None:
        self.port = free_port()
        self.password = f"redis-password-{secrets.token_hex(8)}"
        self.url = f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--requirepass", self.password],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)

    def keys(self) -> int:
        """The number of keys stored (the throttles' histories)."""
        return int(self.client().dbsize())


# The two Redis backends a project may use; short timeouts so a test does not wait on a down
# server (an operator should set such timeouts too: redis-py waits forever by default).
REDIS_BACKENDS = {
    "django": ("django.core.cache.backends.redis.RedisCache", {"socket_connect_timeout": 1}),
    "django-redis": ("django_redis.cache.RedisCache", {"SOCKET_CONNECT_TIMEOUT": 1}),
}


def redis_cache_settings(backend: str, url: str) -> dict:
    path, options = REDIS_BACKENDS[backend]
    return {"default": {"BACKEND": path, "LOCATION": url, "OPTIONS": options}}


def redis_server_or_skip() -> RedisServer:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    return RedisServer()


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): pg_terminate_backend")


def backend_pid(conn=connection) -> int:
    """The server process of this thread's connection (the connection is opened if need be)."""
    conn.ensure_connection()
    return int(conn.connection.info.backend_pid)


def connect_aside(**options):
    """A psycopg connection of its own to the test database, outside Django."""
    import psycopg

    settings = connection.settings_dict
    params = {
        "host": settings["HOST"] or None,
        "port": settings["PORT"] or None,
        "user": settings["USER"] or None,
        "password": settings["PASSWORD"] or None,
        "dbname": settings["NAME"],
    }
    return psycopg.connect(**{k: v for k, v in params.items() if v is not None}, **options)


def terminate(pids) -> int:
    """Kill the given PostgreSQL backends, as an operator or a failover would; returns how many.

    Only backends of the test database (which only this test run uses) are touched: a pid
    whose connection has closed since may belong to someone else's backend by now.
    """
    with connect_aside(autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE pid = ANY(%s) AND datname = current_database() AND pid <> pg_backend_pid()",
            [list(pids)],
        ).fetchone()
    return int(killed[0]) if killed else 0
