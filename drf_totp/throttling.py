"""The second layer of the guess limit: DRF throttles on the endpoints that take a code.

The first layer (the lock in the database) holds on its own; these slow down one client IP or
one user further, through the cache. Rates are read on every request from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` under the scope names below, with safe defaults.

When the cache fails, the throttles let the request through (the lock still limits guesses) and
log one ERROR line per request, or refuse it with a 503 if ``TOTP_THROTTLE_FAIL_CLOSED`` is set.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .exceptions import ThrottleUnavailable
from .settings import totp_settings

logger = logging.getLogger("drf_totp")

DEFAULT_RATES = {
    "totp_user": "10/min",
    "totp_ip": "30/min",
    "totp_login_user": "10/min",
    "totp_login_ip": "20/min",
}


# Set on the request once its cache failed: the request's other throttles skip the cache.
_CACHE_FAILED = "_drf_totp_throttle_cache_failed"


class _CacheFailure(Exception):
    """The throttle's cache raised: anything it raises is taken as the cache being down."""


class _GuardedCache:
    """The cache a throttle reads and writes, with every failure raised as ``_CacheFailure``."""

    alias = DEFAULT_CACHE_ALIAS

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return caches[self.alias].get(key, default)
        except Exception as exc:
            raise _CacheFailure() from exc

    def set(self, key: str, value: Any, timeout: int) -> None:
        try:
            caches[self.alias].set(key, value, timeout)
        except Exception as exc:
            raise _CacheFailure() from exc

    def describe(self) -> str:
        """The alias and backend class (never LOCATION or OPTIONS, which may hold a password)."""
        backend = type(caches[self.alias])
        return f"{self.alias!r} ({backend.__module__}.{backend.__qualname__})"


class RateFromSettingsThrottle(SimpleRateThrottle):
    """A throttle whose rate is looked up when it is used, with our default for its scope.

    If the cache fails, the request passes (or, with ``TOTP_THROTTLE_FAIL_CLOSED``, is refused
    with ``ThrottleUnavailable``); either way one ERROR line per request names the cache.
    """

    scope: str
    cache: Any = _GuardedCache()  # DRF calls get() and set() only

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        rate = rates[self.scope] if self.scope in rates else DEFAULT_RATES.get(self.scope)
        return None if rate is None else str(rate)

    def allow_request(self, request: Any, view: Any) -> bool:
        if getattr(request, _CACHE_FAILED, False):
            return True  # the first throttle of this request logged (or refused) already
        try:
            return super().allow_request(request, view)
        except _CacheFailure as failure:
            setattr(request, _CACHE_FAILED, True)
            return self.cache_failed(request, failure.__cause__)

    def cache_failed(self, request: Any, cause: BaseException | None) -> bool:
        fail_closed = bool(totp_settings.THROTTLE_FAIL_CLOSED)
        logger.error(
            "throttle_cache_failed cache=%s scope=%s path=%s error=%s: %s; request %s",
            self.cache.describe(),
            self.scope,
            request.path,
            type(cause).__name__,
            cause,
            "refused (TOTP_THROTTLE_FAIL_CLOSED)" if fail_closed else "let through",
        )
        if fail_closed:
            raise ThrottleUnavailable()
        return True


class CodeUserThrottle(RateFromSettingsThrottle):
    """Code attempts per authenticated user."""

    scope = "totp_user"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class CodeIPThrottle(RateFromSettingsThrottle):
    """Code attempts per client IP."""

    scope = "totp_ip"

    def get_ident(self, request: Any) -> str:
        """``REMOTE_ADDR``; with ``NUM_PROXIES`` set, the address DRF reads for that many proxies.

        DRF, with ``NUM_PROXIES`` unset, takes ``X-Forwarded-For`` as the client sent it: a
        client could then choose its IP, to evade this throttle or to spend another's budget.
        """
        if api_settings.NUM_PROXIES is None:
            return str(request.META.get("REMOTE_ADDR"))
        return str(super().get_ident(request))

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginIPThrottle(CodeIPThrottle):
    """Login attempts (password, then ticket and code) per client IP."""

    scope = "totp_login_ip"


class LoginUsernameThrottle(RateFromSettingsThrottle):
    """Password attempts per submitted username, whether or not such a user exists."""

    scope = "totp_login_user"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        data = request.data
        username = data.get(get_user_model().USERNAME_FIELD) if isinstance(data, dict) else None
        if not isinstance(username, str) or not username:
            return None
        # As the login serializer reads it (trimmed), and without regard to case.
        # surrogatepass: JSON may carry a lone surrogate, which strict UTF-8 cannot encode.
        key = username.strip().casefold().encode("utf-8", "surrogatepass")
        ident = hashlib.sha256(key).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}
