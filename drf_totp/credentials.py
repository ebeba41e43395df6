"""Credential issuers: what a completed login hands the client, chosen by ``TOTP_LOGIN_CREDENTIAL``.

``"session"``, ``"authtoken"``, ``"simplejwt"`` and ``"knox"`` are built in; a dotted path to a
``CredentialIssuer`` subclass plugs in anything else. Each issuer also records whether the
second factor was passed, in a form ``IsOTPVerified`` can read back for that credential.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from django.contrib.auth import SESSION_KEY, login, user_logged_in
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.middleware.csrf import get_token
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from rest_framework.request import Request

from . import marks, statements
from .models import TOTPDevice
from .settings import totp_settings


class CredentialIssuer:
    """Base class: turn a logged-in user into the response body a client keeps.

    ``device`` is the device that passed the second factor, or None for a user without 2FA.
    """

    def issue(
        self, request: Request, user: AbstractBaseUser, device: TOTPDevice | None, now: datetime
    ) -> dict[str, Any]:
        raise NotImplementedError


class SessionIssuer(CredentialIssuer):
    """Django ``login()`` (a fresh session key), the 2FA mark, and a CSRF cookie for the SPA."""

    def issue(
        self, request: Request, user: AbstractBaseUser, device: TOTPDevice | None, now: datetime
    ) -> dict[str, Any]:
        # Django's login() gives an anonymous session a new key but keeps the key of a session
        # the same user already had (e.g. from the admin); a session that gains the 2FA mark must
        # be one nobody knew before. (Cycling an anonymous one too would save it twice.)
        if SESSION_KEY in request._request.session:
            request._request.session.cycle_key()
        login(request._request, cast(Any, user))  # django-stubs types it for auth.User only
        if device is not None:
            marks.mark_session(request._request.session, device, now)
        get_token(request._request)  # sets the CSRF cookie on the response
        return {"detail": _("Logged in.")}


def logged_in(request: Request, user: AbstractBaseUser) -> None:
    """What Django's login() signals, for credentials that are not sessions (updates last_login)."""
    user_logged_in.send(sender=type(user), request=request._request, user=user)


class AuthTokenIssuer(CredentialIssuer):
    """DRF's ``Token``. DRF keeps one per user, so a new key replaces any earlier one: a token
    obtained before the second factor never gains its mark."""

    def issue(
        self, request: Request, user: AbstractBaseUser, device: TOTPDevice | None, now: datetime
    ) -> dict[str, Any]:
        from rest_framework.authtoken.models import Token

        Token.objects.filter(user=user).delete()
        token = Token.objects.create(user=user)
        logged_in(request, user)
        if device is not None:
            statements.mark(marks.key_digest(token.key), device, now)
        return {"token": token.key}


class KnoxIssuer(CredentialIssuer):
    """A new knox token (knox keeps many per user); marked by its digest."""

    def issue(
        self, request: Request, user: AbstractBaseUser, device: TOTPDevice | None, now: datetime
    ) -> dict[str, Any]:
        from knox.models import get_token_model
        from knox.settings import knox_settings
        from rest_framework.fields import DateTimeField

        instance, token = get_token_model().objects.create(user=user)
        logged_in(request, user)
        if device is not None:
            statements.mark(instance.digest, device, now)
        expiry = None
        if instance.expiry is not None:
            field = DateTimeField(format=knox_settings.EXPIRY_DATETIME_FORMAT)
            expiry = field.to_representation(instance.expiry)
        return {"token": token, "expiry": expiry}


class SimpleJWTIssuer(CredentialIssuer):
    """A SimpleJWT pair whose claims say how the user authenticated: ``amr`` (RFC 8176),
    ``auth_time``, and ``otp_device`` (which device passed)."""

    def issue(
        self, request: Request, user: AbstractBaseUser, device: TOTPDevice | None, now: datetime
    ) -> dict[str, Any]:
        from rest_framework_simplejwt.tokens import RefreshToken

        refresh = RefreshToken.for_user(user)
        logged_in(request, user)
        refresh["amr"] = [marks.AMR_PASSWORD]
        if device is not None:
            refresh["amr"] = [marks.AMR_PASSWORD, marks.AMR_OTP]
        refresh["auth_time"] = int(now.timestamp())
        if device is not None:
            refresh["otp_device"] = device.pk
        return {"access": str(refresh.access_token), "refresh": str(refresh)}


BUILTIN = {
    "session": SessionIssuer,
    "authtoken": AuthTokenIssuer,
    "knox": KnoxIssuer,
    "simplejwt": SimpleJWTIssuer,
}


def get_issuer() -> CredentialIssuer:
    name = totp_settings.LOGIN_CREDENTIAL
    try:
        cls = BUILTIN.get(name) or import_string(name)
    except ImportError as exc:
        raise ImproperlyConfigured(f"TOTP_LOGIN_CREDENTIAL = {name!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, CredentialIssuer)):
        raise ImproperlyConfigured(
            "TOTP_LOGIN_CREDENTIAL must name a built-in issuer or a CredentialIssuer subclass."
        )
    return cls()
