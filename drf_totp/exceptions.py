"""Every failure the package reports: a DRF exception with a stable ``code``, and the handler
that puts that code in every error body.

Error bodies look like ``{"detail": "...", "code": "...", "errors": {"token": [{"message": "...",
"code": "..."}]}}``; ``errors`` is present for field errors only.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger("drf_totp")


class FieldError(exceptions.ValidationError):
    """A 400 that belongs to one input field (``token`` unless said otherwise)."""

    default_detail = _("Invalid input.")
    default_code = "invalid"
    field = "token"

    def __init__(self, detail: Any = None, code: str | None = None, field: str | None = None):
        super().__init__(
            {field or self.field: [detail or self.default_detail]}, code=code or self.default_code
        )


class InvalidFormat(FieldError):
    default_detail = _("Enter the code from your authenticator app.")
    default_code = "invalid_format"


def lock_details(until: datetime, now: datetime) -> dict[str, Any]:
    """What a client needs to show a countdown: ``locked_until`` and ``retry_after`` (seconds)."""
    return {
        "locked_until": until.isoformat(),
        "retry_after": max(1, math.ceil((until - now).total_seconds())),
    }


class InvalidToken(FieldError):
    """A wrong code. If this failure started a lock, the body says until when."""

    default_detail = _("This code is not valid.")
    default_code = "invalid_token"

    def __init__(self, *, locked_until: datetime | None = None, now: datetime | None = None):
        super().__init__()
        if locked_until is not None and now is not None:
            self.extra = lock_details(locked_until, now)


class TokenReused(FieldError):
    default_detail = _("This code has already been used. Wait for the next one.")
    default_code = "token_reused"


class Locked(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = _("Too many wrong codes. Try again later.")
    default_code = "locked"

    def __init__(self, until: datetime, now: datetime):
        super().__init__()
        self.extra = lock_details(until, now)
        # DRF's handler turns ``wait`` into the Retry-After header.
        self.wait = self.extra["retry_after"]


class LockedOut(exceptions.APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_detail = _(
        "Too many wrong codes: authenticator codes are refused until you use a recovery code "
        "or an administrator unlocks your account."
    )
    default_code = "locked_out"


class NotEnabled(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("Two-factor authentication is not enabled.")
    default_code = "not_enabled"


class OTPRequired(exceptions.APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_detail = _(
        "Pass the second factor with this credential first: only then may a new authenticator "
        "replace the current one."
    )
    default_code = "otp_required"


class NoPendingDevice(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("There is no device waiting for confirmation. Generate a secret first.")
    default_code = "no_pending_device"


class AlreadyEnabled(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("Two-factor authentication is already enabled.")
    default_code = "already_enabled"


# Seconds a client is asked to wait (Retry-After) when a service the package needs has failed.
RETRY_AFTER_SECONDS = 10


class ServiceUnavailable(exceptions.APIException):
    """The database failed: connection lost or refused, statement timeout. Nothing to fix in
    the request; send it again later."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The service is temporarily unavailable. Try again later.")
    default_code = "service_unavailable"
    wait = RETRY_AFTER_SECONDS


class ThrottleUnavailable(ServiceUnavailable):
    """The throttles' cache failed and ``TOTP_THROTTLE_FAIL_CLOSED`` refuses requests meanwhile."""

    default_code = "throttle_unavailable"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "request_too_large"


def _flatten(details: Any, prefix: str = "") -> dict[str, list[dict[str, str]]]:
    """``get_full_details()`` of a validation error as ``{field: [{message, code}]}``."""
    if isinstance(details, dict) and set(details) == {"message", "code"}:
        return {prefix or "non_field_errors": [details]}
    if isinstance(details, dict):
        out: dict[str, list[dict[str, str]]] = {}
        for key, value in details.items():
            for field, errors in _flatten(value, f"{prefix}.{key}" if prefix else str(key)).items():
                out.setdefault(field, []).extend(errors)
        return out
    out = {}
    for item in details:
        for field, errors in _flatten(item, prefix).items():
            out.setdefault(field, []).extend(errors)
    return out


def infrastructure_error(exc: Exception) -> Exception:
    """A failure around the request as an answer the client can act on; others unchanged.

    A body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413. OperationalError and InterfaceError
    are what a lost or refused connection, a statement or lock timeout and a deadlock raise: a
    503, the cause logged. Other database errors are bugs and stay 500s.
    """
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return exc
    # Database errors name the host and the failure, never the password.
    logger.error("service_unavailable: the database failed", exc_info=exc)
    return ServiceUnavailable()


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (status, headers, rollback), with a ``code`` in every error body."""
    exc = infrastructure_error(exc)
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    details: Any = exc.get_full_details()
    if isinstance(exc.detail, (dict, list)):
        errors = _flatten(details)
        first = next(iter(errors.values()))[0]
        response.data = {"detail": first["message"], "code": first["code"], "errors": errors}
    else:
        response.data = {"detail": details["message"], "code": details["code"]}
    wait = getattr(exc, "wait", None)  # Throttled, and our Locked and ServiceUnavailable
    if wait is not None:
        response.data["retry_after"] = math.ceil(wait)
    response.data.update(getattr(exc, "extra", {}))
    return response


class InvalidCredentials(FieldError):
    default_detail = _("Unable to log in with the provided credentials.")
    default_code = "invalid_credentials"
    field = "non_field_errors"


class InvalidTicket(FieldError):
    default_detail = _("This login has expired or was already used. Log in again.")
    default_code = "invalid_ticket"
    field = "ticket"


class TicketExpired(InvalidTicket):
    default_detail = _("This login has expired. Log in again.")
    default_code = "ticket_expired"


class InvalidCodeOrPassword(InvalidToken):
    """``disable/`` with the password required: the code or the password is wrong, and the
    answer does not say which (a wrong password counts as a wrong code)."""

    default_detail = _("The code or the password is not correct.")
    default_code = "invalid_code_or_password"
    field = "non_field_errors"


class TokenLimitReached(exceptions.APIException):
    """knox's ``TOKEN_LIMIT_PER_USER``, applied as knox's own login applies it (403)."""

    status_code = status.HTTP_403_FORBIDDEN
    default_detail = _(
        "This account holds the most tokens allowed. Log out on another device first."
    )
    default_code = "token_limit_reached"


class CredentialNotMarkable(exceptions.APIException):
    """A token that a password alone can obtain (DRF's authtoken) never records the second factor."""

    status_code = status.HTTP_403_FORBIDDEN
    default_detail = _(
        "This token cannot record the second factor. Log in through the two-step login "
        "for a token that can."
    )
    default_code = "credential_not_markable"


class SecretUnavailable(exceptions.APIException):
    """A device's secret cannot be decrypted (or encrypted) with the configured keys: 503.

    Raising it logs one ERROR line on the ``drf_totp`` logger naming the device, its user and
    the likely cause (never the secret or its token), so that the operator learns what the
    client cannot tell: Django logs nothing for an answered request.
    """

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _(
        "Authenticator codes cannot be checked right now because of a server configuration "
        "problem. Try again later."
    )
    default_code = "secret_unavailable"
    problem = "cannot decrypt"

    def __init__(self, cause: str, *, device: Any = None) -> None:
        super().__init__()
        if device is None:
            logger.error("drf_totp: cannot encrypt a TOTP secret: %s", cause)
        else:
            logger.error(
                "drf_totp: %s the secret of TOTP device %s (user %s): %s",
                self.problem,
                device.pk,
                device.user_id,
                cause,
            )


class SecretInvalid(SecretUnavailable):
    """A device's secret decrypts, but to something that is no TOTP key (not base32): 503."""

    default_detail = _(
        "The authenticator of this account cannot be checked: its stored secret is damaged. "
        "Use a recovery code, or ask an administrator to reset two-factor authentication."
    )
    default_code = "secret_invalid"
    problem = "cannot use"
