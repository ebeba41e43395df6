"""OpenAPI descriptions for drf-spectacular, loaded only when it is installed.

Kept out of the views: these extensions replace each view with an annotated subclass while
the schema is generated, and nothing here runs while serving requests.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension, OpenApiViewExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema

from . import serializers

ERRORS = {
    400: "Invalid input, a wrong or reused code, or a bad ticket.",
    401: "Not authenticated.",
    403: "Not allowed (CSRF, permission), or locked out after too many failures.",
    409: "The request does not fit the user's 2FA state.",
    415: "The body is not JSON.",
    429: "Locked after wrong codes, or throttled; see Retry-After.",
}


def responses(ok: Any, *statuses: int) -> dict[int, Any]:
    errors = {
        status: OpenApiResponse(serializers.ErrorSerializer, description=ERRORS[status])
        for status in statuses
    }
    return {200: ok, **errors}


class TokenFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "drf_totp.serializers.TokenField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {
            "type": "string",
            "minLength": 1,
            "maxLength": serializers.MAX_TOKEN_LENGTH,
            "example": "123456",
        }


def _annotated(view: type, **schema: Any) -> type:
    """``view`` with ``extend_schema(**schema)`` on its one handler."""
    method = "get" if hasattr(view, "get") else "post"
    annotated = type(view.__name__, (view,), {method: getattr(view, method)})
    setattr(annotated, method, extend_schema(**schema)(getattr(view, method)))
    return annotated


def _extension(target: str, **schema: Any) -> None:
    def view_replacement(self: OpenApiViewExtension) -> type:
        return _annotated(self.target_class, **schema)

    name = target.rsplit(".", 1)[1] + "Schema"
    type(name, (OpenApiViewExtension,), {"target_class": target, "view_replacement": view_replacement})


TAGS = ["2FA"]
CODE_ERRORS = (400, 401, 403, 409, 415, 429)

_extension(
    "drf_totp.views.GenerateView",
    tags=TAGS,
    summary="Start (or restart) enrollment",
    request=serializers.EmptySerializer,
    responses=responses(serializers.GenerateResponseSerializer, 400, 401, 403, 409, 415),
)
_extension(
    "drf_totp.views.VerifyView",
    tags=TAGS,
    summary="Confirm the pending device: 2FA on",
    responses=responses(serializers.ConfirmedSerializer, *CODE_ERRORS),
)
_extension(
    "drf_totp.views.StatusView",
    tags=TAGS,
    summary="The user's 2FA state",
    responses=responses(serializers.StatusSerializer, 401, 403),
)
_extension(
    "drf_totp.views.ValidateView",
    tags=TAGS,
    summary="Check a code (the second factor)",
    responses=responses(serializers.EnabledSerializer, *CODE_ERRORS),
)
_extension(
    "drf_totp.views.DisableView",
    tags=TAGS,
    summary="Turn 2FA off",
    responses=responses(serializers.EnabledSerializer, *CODE_ERRORS),
)
_extension(
    "drf_totp.views.RecoveryCodesView",
    tags=TAGS,
    summary="Replace the recovery codes",
    responses=responses(serializers.RecoveryCodesSerializer, *CODE_ERRORS),
)
_extension(
    "drf_totp.views.LoginView",
    tags=TAGS,
    summary="Log in, step one: password",
    responses=responses(serializers.LoginResponseSerializer, 400, 415, 429),
)
_extension(
    "drf_totp.views.LoginVerifyView",
    tags=TAGS,
    summary="Log in, step two: ticket and code",
    responses=responses(serializers.LoginResponseSerializer, 400, 403, 409, 415, 429),
)
