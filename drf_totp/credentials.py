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
from django.db import connections, router, transaction
from django.db.models import Q
from django.middleware.csrf import get_token
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from rest_framework.request import Request

from . import authentication, exceptions, marks, statements
from .models import LoginToken, TOTPDevice
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
    """A token of drf-totp's own (``LoginToken``), sent as ``Authorization: Token <key>`` and read
    by ``drf_totp.authentication.TokenAuthentication``. Only this issuer creates them, so no
    password-only endpoint can hand out a marked one. Each login adds a token; the user keeps the
    newest ``TOTP_LOGIN_TOKENS_PER_USER``."""

    def issue(
        self, request: Request, user: AbstractBaseUser, device: TOTPDevice | None, now: datetime
    ) -> dict[str, Any]:
        key = authentication.new_key()
        token = LoginToken.objects.create(
            user=user, digest=authentication.key_digest(key), created_at=now
        )
        _keep_newest(user)
        logged_in(request, user)
        if device is not None:
            statements.mark(token.digest, device, now)
        return {"token": key}


def _keep_newest(user: AbstractBaseUser) -> None:
    """Delete the user's login tokens beyond the newest ``TOTP_LOGIN_TOKENS_PER_USER`` (their
    marks go with them)."""
    keep = totp_settings.LOGIN_TOKENS_PER_USER
    tokens = LoginToken.objects.filter(user=user)
    # Two statements: MariaDB has no LIMIT in an IN subquery.
    oldest_kept = tokens.order_by("-pk").values_list("pk", flat=True)[keep - 1 : keep]
    for pk in oldest_kept:
        tokens.filter(pk__lt=pk).delete()


class KnoxIssuer(CredentialIssuer):
    """A new knox token (knox keeps many per user), marked by its digest. knox's
    ``TOKEN_LIMIT_PER_USER`` applies as knox's ``LoginView`` applies it: refused with 403."""

    def issue(
        self, request: Request, user: AbstractBaseUser, device: TOTPDevice | None, now: datetime
    ) -> dict[str, Any]:
        from knox.models import get_token_model
        from knox.settings import knox_settings
        from rest_framework.fields import DateTimeField

        model = get_token_model()
        limit = knox_settings.TOKEN_LIMIT_PER_USER
        with transaction.atomic(using=router.db_for_write(model)):
            if limit is not None:
                _lock(user)
            instance, token = model.objects.create(
                user=user, expiry=knox_settings.TOKEN_TTL, prefix=knox_settings.TOKEN_PREFIX
            )
            if limit is not None:
                live = model.objects.filter(Q(expiry__isnull=True) | Q(expiry__gt=now), user=user)
                if live.count() > limit:  # knox counts before it creates; here with the new one
                    raise exceptions.TokenLimitReached()  # rolls the new token back
        logged_in(request, user)
        if device is not None:
            statements.mark(instance.digest, device, now)
        expiry = None
        if instance.expiry is not None:
            field = DateTimeField(format=knox_settings.EXPIRY_DATETIME_FORMAT)
            expiry = field.to_representation(instance.expiry)
        return {"token": token, "expiry": expiry}


def _lock(user: AbstractBaseUser) -> None:
    """Serialize the logins of one user until the transaction ends, so that a limit counted in it
    holds. SQLite has no row locks, and needs none: its first write locks the database."""
    model = type(user)
    alias = router.db_for_write(model)
    if connections[alias].features.has_select_for_update:
        list(
            model._default_manager.using(alias).select_for_update().filter(pk=user.pk).values("pk")
        )


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
