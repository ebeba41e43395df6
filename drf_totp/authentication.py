"""Authentication with drf-totp's own tokens (``TOTP_LOGIN_CREDENTIAL = "authtoken"``).

A token is ``Authorization: Token <key>``, as with DRF's authtoken, but its key starts with
``KEY_PREFIX``, which a DRF key (40 hex digits) never does. For any other key the class answers
None, so it sits before DRF's ``TokenAuthentication`` in ``DEFAULT_AUTHENTICATION_CLASSES`` and
each class reads its own tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING, Any

from rest_framework import authentication, exceptions

if TYPE_CHECKING:
    from .models import LoginToken

KEY_PREFIX = "totp_"


def new_key() -> str:
    """A fresh key: the prefix and 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    """The digest under which a key's token (and its mark) is kept; the key is never stored."""
    return hashlib.sha256(key.encode()).hexdigest()


class TokenAuthentication(authentication.TokenAuthentication):
    """Reads drf-totp's login tokens; leaves every other ``Token`` key to the classes after it."""

    def authenticate_credentials(self, key: str) -> tuple[Any, LoginToken] | None:  # type: ignore[override]
        # Imported here, as DRF's own class does: DRF imports this module while it loads its
        # settings, which may happen while drf_totp.models is still being imported.
        from .models import LoginToken

        if not key.startswith(KEY_PREFIX):
            return None
        token = LoginToken.objects.select_related("user").filter(digest=key_digest(key)).first()
        # A key of ours that is unknown (ended, or never issued), or an inactive user: DRF's own
        # 401, as its TokenAuthentication answers.
        if token is None or not getattr(token.user, "is_active", True):
            raise exceptions.AuthenticationFailed()
        return token.user, token
