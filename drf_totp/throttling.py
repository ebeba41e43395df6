"""The second layer of the guess limit: DRF throttles on the endpoints that take a code.

The first layer (the lock in the database) holds on its own; these slow down one client IP or
one user further, through the cache. Rates are read on every request from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` under the scope names below, with safe defaults.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

DEFAULT_RATES = {
    "totp_user": "10/min",
    "totp_ip": "30/min",
    "totp_login_user": "10/min",
    "totp_login_ip": "20/min",
}


class RateFromSettingsThrottle(SimpleRateThrottle):
    """A throttle whose rate is looked up when it is used, with our default for its scope."""

    scope: str

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        rate = rates[self.scope] if self.scope in rates else DEFAULT_RATES.get(self.scope)
        return None if rate is None else str(rate)


class CodeUserThrottle(RateFromSettingsThrottle):
    """Code attempts per authenticated user."""

    scope = "totp_user"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class CodeIPThrottle(RateFromSettingsThrottle):
    """Code attempts per client IP (``NUM_PROXIES`` decides how the IP is read, as in DRF)."""

    scope = "totp_ip"

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
