"""The login ticket: proof that a user passed the password step, waiting for the second factor.

A ticket is signed with ``django.core.signing``, expires after ``TOTP_TICKET_MAX_AGE`` seconds,
and is bound to the user's password hash and to the state of their device. Completing the login,
changing the password or disabling 2FA changes that state, so every outstanding ticket dies. It
is never a credential: no view authenticates with it.

It also carries the authentication backend that checked the password, which the login then
records (Django's ``login()`` needs it when several backends are configured); a ticket whose
backend is no longer in ``AUTHENTICATION_BACKENDS`` is invalid.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.utils.crypto import salted_hmac
from django.views.decorators.debug import sensitive_variables

from . import exceptions, statements
from .models import TOTPDevice
from .settings import totp_settings

_SALT = "drf_totp.login-ticket"


def _fingerprint(user: AbstractBaseUser, device: TOTPDevice) -> str:
    state = f"{user.password}|{device.pk}|{device.confirmed_at}|{device.use_count}"
    return salted_hmac(_SALT, state, algorithm="sha256").hexdigest()


@sensitive_variables()
def issue(user: AbstractBaseUser, device: TOTPDevice) -> str:
    """A ticket for ``user`` as ``authenticate()`` returned it, ``user.backend`` set (without
    it, as for Django's ``login()``, the one backend configured)."""
    backend = getattr(user, "backend", None)
    if backend is None:
        [backend] = settings.AUTHENTICATION_BACKENDS  # several: the caller must say which
    payload = {"u": str(user.pk), "b": backend, "f": _fingerprint(user, device)}
    return signing.dumps(payload, salt=_SALT)


@sensitive_variables()
def redeem(ticket: str) -> TOTPDevice:
    """The device whose second factor the ticket waits for, or raise. ``device.user`` is set,
    with ``backend``: the backend that checked the password, as ``authenticate()`` sets it.

    The ticket is valid only while the device's ``use_count`` is what the caller finds; the
    caller makes its success conditional on that value, so a ticket completes one login.
    """
    try:
        payload: Any = signing.loads(ticket, salt=_SALT, max_age=totp_settings.TICKET_MAX_AGE)
    except signing.SignatureExpired:
        raise exceptions.TicketExpired() from None
    except signing.BadSignature:
        raise exceptions.InvalidTicket() from None
    if not isinstance(payload, dict) or not isinstance(payload.get("f"), str):
        raise exceptions.InvalidTicket()
    backend = payload.get("b")
    if backend not in settings.AUTHENTICATION_BACKENDS:
        raise exceptions.InvalidTicket()
    user_model = get_user_model()
    try:
        user = user_model._default_manager.get(pk=payload.get("u"))
    except (user_model.DoesNotExist, ValueError, TypeError):
        raise exceptions.InvalidTicket() from None
    if not getattr(user, "is_active", True):
        raise exceptions.InvalidTicket()
    device = statements.confirmed_device(user)
    if device is None or not hmac.compare_digest(_fingerprint(user, device), payload["f"]):
        raise exceptions.InvalidTicket()
    user.backend = backend
    return device
