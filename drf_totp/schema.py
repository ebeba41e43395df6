"""OpenAPI descriptions for drf-spectacular, loaded only when it is installed.

Kept out of the views: these extensions replace each view with an annotated subclass while
the schema is generated, and nothing here runs while serving requests.
"""

from __future__ import annotations

from typing import Any, cast

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
    OpenApiViewExtension,
)
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.serializers import CharField

from . import serializers

# Translatable like the serializers' help texts: ``spectacular --lang de`` renders them in German.
ERRORS = {
    400: _("Invalid input, a wrong or reused code, or a bad ticket."),
    401: _("Not authenticated."),
    403: _(
        "Not allowed (CSRF, permission, a token that cannot record the second factor, the "
        "token limit), or locked out after too many failures."
    ),
    409: _("The request does not fit the user's 2FA state."),
    413: _("The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE."),
    415: _("The body is not JSON."),
    429: _("Locked after wrong codes, or throttled; see Retry-After."),
    503: _("The database (or the throttles' cache) failed; see Retry-After."),
}


def responses(ok: Any, *statuses: int) -> dict[int, Any]:
    """The 200 body and the errors, 503 included: every endpoint needs the database."""
    statuses = (*statuses, 503)
    errors = {
        status: OpenApiResponse(serializers.ErrorSerializer, description=ERRORS[status])
        for status in statuses
    }
    return {200: ok, **errors}


class LoginTokenScheme(OpenApiAuthenticationExtension):
    """drf-totp's login tokens: ``Authorization: Token <key>``, a scheme of their own."""

    target_class = "drf_totp.authentication.TokenAuthentication"
    name = "loginTokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token"),
        )


class TokenFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "drf_totp.serializers.TokenField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {
            "type": "string",
            "minLength": 1,
            "maxLength": serializers.MAX_TOKEN_LENGTH,
            "example": "123456",
        }


class StrictSerializerSchema(OpenApiSerializerExtension):
    """Request bodies refuse undeclared keys (400 ``unexpected_field``): ``additionalProperties``
    is false. Their text fields refuse ``""`` (400 ``blank``): ``minLength`` is 1, whatever the
    project's ENFORCE_NON_BLANK_FIELDS and COMPONENT_SPLIT_REQUEST. A body without a docstring of
    its own gets no description (StrictSerializer's is about the implementation, not the API)."""

    target_class = "drf_totp.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        for name, field in self.target.fields.items():
            if isinstance(field, CharField) and not field.allow_blank:
                schema["properties"][name].setdefault("minLength", 1)
        if not type(self.target).__doc__:
            schema.pop("description", None)
        return schema


def _annotated(view: type, **schema: Any) -> type:
    """``view`` with ``extend_schema(**schema)`` on its one handler."""
    method = "get" if hasattr(view, "get") else "post"
    annotated = type(view.__name__, (view,), {method: getattr(view, method)})
    setattr(annotated, method, extend_schema(**schema)(getattr(view, method)))
    return annotated


def _extension(target: str, **schema: Any) -> None:
    def view_replacement(self: OpenApiViewExtension) -> type:
        return _annotated(cast(type, self.target_class), **schema)

    name = target.rsplit(".", 1)[1] + "Schema"
    type(
        name,
        (OpenApiViewExtension,),
        {"target_class": target, "view_replacement": view_replacement},
    )


TAGS = ["2FA"]
CODE_ERRORS = (400, 401, 403, 409, 413, 415, 429)

_extension(
    "drf_totp.views.GenerateView",
    tags=TAGS,
    summary=_("Start (or restart) enrollment"),
    request=serializers.EmptySerializer,
    responses=responses(serializers.GenerateResponseSerializer, 400, 401, 403, 409, 413, 415),
)
_extension(
    "drf_totp.views.VerifyView",
    tags=TAGS,
    summary=_("Confirm the pending device: 2FA on"),
    responses=responses(serializers.ConfirmedSerializer, *CODE_ERRORS),
)
_extension(
    "drf_totp.views.StatusView",
    tags=TAGS,
    summary=_("The user's 2FA state"),
    responses=responses(serializers.StatusSerializer, 401, 403),
)
_extension(
    "drf_totp.views.ValidateView",
    tags=TAGS,
    summary=_("Check a code (the second factor)"),
    responses=responses(serializers.EnabledSerializer, *CODE_ERRORS),
)
_extension(
    "drf_totp.views.DisableView",
    tags=TAGS,
    summary=_("Turn 2FA off"),
    responses=responses(serializers.EnabledSerializer, *CODE_ERRORS),
)
_extension(
    "drf_totp.views.RecoveryCodesView",
    tags=TAGS,
    summary=_("Replace the recovery codes"),
    responses=responses(serializers.RecoveryCodesSerializer, *CODE_ERRORS),
)
_extension(
    "drf_totp.views.LoginView",
    tags=TAGS,
    summary=_("Log in, step one: password"),
    responses=responses(serializers.LoginResponseSerializer, 400, 403, 413, 415, 429),
)
_extension(
    "drf_totp.views.LoginVerifyView",
    tags=TAGS,
    summary=_("Log in, step two: ticket and code"),
    responses=responses(serializers.LoginResponseSerializer, 400, 403, 409, 413, 415, 429),
)
