"""Settings of the benchmark: the example project's, with what a fair measurement needs changed.

Every change from ``example/example_project/settings.py`` is listed in ``CHANGES``, and the
bench prints that list with its results.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "example"))

from example_project.settings import *  # noqa: E402,F403
from example_project.settings import REST_FRAMEWORK as _EXAMPLE_REST_FRAMEWORK  # noqa: E402

BUILD_DIR = ROOT / "build" / "bench"
SQLITE_URL = f"sqlite:///{BUILD_DIR / 'bench.sqlite3'}"

DEBUG = False
INSTALLED_APPS = [*INSTALLED_APPS, "bench"]  # noqa: F405 - the floor's model (bench/models.py)
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "bench.urls"
WSGI_APPLICATION = "bench.wsgi.application"

# Persistent connections, as any deployment has (or a pooler): otherwise every request would
# measure PostgreSQL's connection setup.
DATABASES = {
    "default": dj_database_url.parse(os.environ.get("DATABASE_URL", SQLITE_URL), conn_max_age=600)
}
# The scale test (bench/scale.py) measures a second PostgreSQL database beside the first, and
# sends the bench's own queries to one or the other with a router.
if "BENCH_SMALL_DATABASE_URL" in os.environ:
    DATABASES["small"] = dj_database_url.parse(
        os.environ["BENCH_SMALL_DATABASE_URL"], conn_max_age=600
    )
    DATABASE_ROUTERS = ["bench.scale.Router"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; synchronous=NORMAL syncs at checkpoints rather
    # than at every commit (SQLite's advice for WAL). The timeout waits out the other worker.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
    }

# Password hashing is Django's, not ours, and costs far more than everything else in a login
# (PBKDF2, 1,000,000 iterations by default): with it, the login rows would measure only that.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The throttles are the cache's work, not the database's, and at their default rates they would
# refuse almost every request of a load test from one IP: turned off (None) for every scope.
# (The scopes of drf_totp.throttling.DEFAULT_RATES, spelt out: importing that module here would
# make DRF read its settings before this file has finished setting them.)
THROTTLE_SCOPES = ["totp_user", "totp_ip", "totp_login_user", "totp_login_ip"]
REST_FRAMEWORK = {
    **_EXAMPLE_REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": dict.fromkeys(THROTTLE_SCOPES),
}

CHANGES = [
    "DEBUG = False",
    "CONN_MAX_AGE = 600 (persistent database connections)",
    "SQLite: PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    "PASSWORD_HASHERS = [MD5PasswordHasher] (Django's default PBKDF2 would dominate login)",
    "throttle rates of the scopes " + ", ".join(THROTTLE_SCOPES) + " = None (throttles off)",
]

# Server errors go to gunicorn's log (bench/run.py points at it): DEBUG = False hides them.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False}},
}
