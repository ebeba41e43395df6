"""The mark a Django session carries once its user passed the second factor."""

from __future__ import annotations

from datetime import datetime

from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request

from .models import TOTPDevice

SESSION_KEY = "drf_totp_verified"


def is_session_request(request: Request) -> bool:
    return isinstance(getattr(request, "successful_authenticator", None), SessionAuthentication)


def mark_verified(request: Request, device: TOTPDevice, now: datetime) -> None:
    """Record the second factor on a session-authenticated request, under a fresh session key.

    Requests authenticated otherwise (tokens, JWT) are left alone: no session is created for them.
    """
    if not is_session_request(request):
        return
    request.session.cycle_key()
    request.session[SESSION_KEY] = {"device": device.pk, "at": int(now.timestamp())}
