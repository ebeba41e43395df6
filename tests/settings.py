"""Django settings for the drf-totp test suite.

The database and the cache are picked from the environment, so the same suite runs on
every backend CI covers:

``DATABASE_URL``
    unset (default)                         SQLite on a file in the system temp dir
    ``postgres://postgres@127.0.0.1:5432/test``  PostgreSQL (needs the ``postgres`` extra)
    ``mysql://root@127.0.0.1:3306/test``         MariaDB/MySQL (needs the ``mysql`` extra)

``CACHE_URL``
    unset (default)                         LocMemCache
    ``redis://127.0.0.1:6379/1``            Django's built-in RedisCache
    ``dummy://``                            DummyCache (stores nothing)
    ``locmem://``                           LocMemCache

For non-SQLite databases Django creates (and drops) ``test_<name>`` itself.
"""

from __future__ import annotations

import os
import tempfile
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

SECRET_KEY = "drf-totp-tests-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "drf_totp.apps.OTPAdminConfig",  # django.contrib.admin, its default site behind 2FA
    "django.contrib.messages",
    "rest_framework",
    "rest_framework.authtoken",
    "knox",
    "drf_totp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Fast and insecure: fine for tests, never for production.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        # drf-totp's login tokens ("authtoken"), before DRF's own tokens (drf_totp.E010).
        "drf_totp.authentication.TokenAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    # No proxy in front: the client IP is REMOTE_ADDR (drf-totp checks that this is set).
    "NUM_PROXIES": 0,
}


# --- Database -------------------------------------------------------------------------------

_TMP = tempfile.gettempdir()

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL")
        or "sqlite:///" + os.path.join(_TMP, "drf_totp_tests.sqlite3"),
        conn_max_age=0,
    ),
}

_ENGINE = DATABASES["default"]["ENGINE"]
_OPTIONS = DATABASES["default"].setdefault("OPTIONS", {})

if _ENGINE.endswith("sqlite3"):
    # A file, not ":memory:", so tests that use real threads (each with its own connection)
    # see the same test database. One file per process keeps parallel runs apart.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(_TMP, f"drf_totp_test_{os.getpid()}.sqlite3"),
    }
    # Wait for a writer in another thread instead of failing with "database is locked".
    _OPTIONS["timeout"] = 20
    # Django's default transaction mode (DEFERRED) on purpose: the package must not need
    # IMMEDIATE. It never opens a transaction that reads before it writes.
elif _ENGINE.endswith("mysql"):
    _OPTIONS["charset"] = "utf8mb4"
    DATABASES["default"]["TEST"] = {
        "CHARSET": "utf8mb4",
        "COLLATION": "utf8mb4_unicode_ci",
    }


# --- Cache ----------------------------------------------------------------------------------


def _cache_from_url(url: str) -> dict:
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("redis", "rediss", "unix"):
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "drf_totp_tests",
        }
    if scheme == "dummy":
        return {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    if scheme == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    raise ImproperlyConfigured(f"CACHE_URL: unsupported scheme {scheme!r} in {url!r}")


CACHES = {"default": _cache_from_url(os.environ.get("CACHE_URL", ""))}


# --- Packages the importers read from (tests/importers/) ------------------------------------
# The real django-otp and django-allauth models, so imports are tested against their schema.

INSTALLED_APPS += [
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "allauth",
    "allauth.account",
    "allauth.mfa",
]
# allauth.account refuses to start without its middleware.
MIDDLEWARE += ["allauth.account.middleware.AccountMiddleware"]
