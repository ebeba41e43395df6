"""The example project's own views: the demo page, and the few JSON endpoints drf-totp leaves to
the project (sign-up, log-out, who am I).

The page (templates/demo/index.html, static/demo/app.js) talks to the server only through JSON:
drf-totp's endpoints under /auth/otp/ and the three below under /demo/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model, logout
from django.contrib.auth.password_validation import (
    get_default_password_validators,
    get_password_validators,
    validate_password,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.shortcuts import render
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import ensure_csrf_cookie
from rest_framework import serializers, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_totp.exceptions import exception_handler
from drf_totp.parsers import JSONParser

API_PREFIXES = ("auth/", "demo/")
HIDDEN_METHODS = {"head", "options", "trace"}

# Django's own list from `startproject`, used when the project configures none, so that sign-up
# shows what a real project would refuse.
STARTPROJECT_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]


# --- The page ---------------------------------------------------------------------------------


def _route(pattern) -> str:
    text = str(pattern)
    # DRF routers use regex patterns: show them the way a person reads a path.
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"<\1>", text)
    return text.removeprefix("^").removesuffix("$").replace("\\", "")


def _methods(callback) -> list[str]:
    actions = getattr(callback, "actions", None)  # DRF viewsets: {"get": "list", ...}
    if actions:
        return sorted(m.upper() for m in actions if m not in HIDDEN_METHODS)
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is None:
        return []
    return [
        m.upper()
        for m in view_class.http_method_names
        if m not in HIDDEN_METHODS and hasattr(view_class, m)
    ]


def _summary(callback) -> str:
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    doc = (view_class or callback).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _walk(patterns, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        route = prefix + _route(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        else:
            yield route, entry


def api_endpoints() -> list[dict]:
    endpoints = []
    for route, entry in _walk(get_resolver().url_patterns):
        # Skip the ".json"-style format-suffix twins DRF adds next to each route.
        if not route.startswith(API_PREFIXES) or re.search(r"[<:]format>", route):
            continue
        endpoints.append(
            {
                "path": "/" + route,
                "name": entry.name or "",
                "methods": ", ".join(_methods(entry.callback)),
                "summary": _summary(entry.callback),
            }
        )
    return endpoints


@ensure_csrf_cookie
def index(request):
    """The demo page. It sets the CSRF cookie the page's scripts send back in X-CSRFToken."""
    return render(request, "demo/index.html", {"endpoints": api_endpoints()})


# --- JSON endpoints -------------------------------------------------------------------------


class DemoAPIView(APIView):
    """JSON in (as drf-totp parses it: too deep a body is a 400), JSON out, errors in
    drf-totp's shape: {"detail", "code", "errors"?}. Left out of the OpenAPI schema, which
    describes drf-totp's API: these are the demo's helpers, not part of it."""

    parser_classes = [JSONParser]
    schema = None

    def get_exception_handler(self) -> Any:
        return exception_handler


class SignupSerializer(serializers.Serializer):
    """A new account of Django's user model: the username's own rules, a username nobody has
    (whatever its case), and a password Django's validators accept."""

    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    password = serializers.CharField(trim_whitespace=False, max_length=4096, write_only=True)

    def validate_username(self, value: str) -> str:
        for validator in get_user_model()._meta.get_field("username").validators:
            try:
                validator(value)
            except DjangoValidationError as exc:
                raise serializers.ValidationError(_errors(exc)) from None
        if get_user_model()._default_manager.filter(username__iexact=value).exists():
            raise serializers.ValidationError([_username_taken()])
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = get_user_model()(username=attrs["username"], email=attrs.get("email", ""))
        validators = get_default_password_validators() or get_password_validators(
            STARTPROJECT_PASSWORD_VALIDATORS
        )
        try:
            validate_password(attrs["password"], candidate, password_validators=validators)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": _errors(exc)}) from None
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Any:
        try:
            return get_user_model()._default_manager.create_user(**validated_data)
        except IntegrityError:  # the same name, signed up a moment ago
            raise serializers.ValidationError({"username": [_username_taken()]}) from None


def _errors(exc: DjangoValidationError) -> list[ErrorDetail]:
    """Django's validation messages with their codes (password_too_short, ...)."""
    return [
        ErrorDetail(" ".join(error.messages), code=error.code or "invalid")
        for error in exc.error_list
    ]


def _username_taken() -> ErrorDetail:
    message = _("That username is taken. Choose another one, or log in.")
    return ErrorDetail(str(message), code="unique")


class SignupView(DemoAPIView):
    """Create an account (username, password, optional email). It does not log in."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        serializer = SignupSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.save()
        body = {"detail": _("Account created. You can log in now."), "username": user.username}
        return Response(body, status=status.HTTP_201_CREATED)


class LogoutView(DemoAPIView):
    """End the session (Django's logout). Logged-out clients get the same answer."""

    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        logout(request)
        return Response({"detail": _("Logged out.")})


class MeView(DemoAPIView):
    """Who is logged in: the username and email of the session's user."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        user = request.user
        return Response({"username": user.get_username(), "email": getattr(user, "email", "")})
