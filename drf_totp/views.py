"""Thin HTTP views: parse the body, call the domain, shape the answer."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from . import devices, exceptions, login, marks, qr, serializers
from .credentials import get_issuer
from .parsers import JSONParser
from .permissions import IsOTPVerified
from .reports import secret_request
from .settings import totp_settings
from .throttling import CodeIPThrottle, CodeUserThrottle, LoginIPThrottle, LoginUsernameThrottle
from .verification import Accepted


# Not wrapped in ATOMIC_REQUESTS: a failed guess must stay counted when the view answers with an
# error (DRF rolls the request's transaction back on errors).
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class TOTPAPIView(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]
    serializer_class: type[Serializer] = serializers.EmptySerializer

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # Requests and answers carry passwords, codes, tickets, recovery codes and secrets: error
        # reports show none of them (reports.py). Decorated once here, not on every dispatch.
        return secret_request(super().as_view(**initkwargs))

    def get_exception_handler(self) -> Any:
        return exceptions.exception_handler

    @property
    def user(self) -> AbstractBaseUser:
        """The authenticated user (the permission classes ran before any handler)."""
        return cast(AbstractBaseUser, self.request.user)

    def get_serializer(self, *args: Any, **kwargs: Any) -> Serializer:
        kwargs.setdefault("context", {"request": self.request, "view": self})
        return self.serializer_class(*args, **kwargs)

    def validated(self, request: Request) -> dict[str, Any]:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def no_store(self, data: dict[str, Any]) -> Response:
        """A response that carries a secret or a credential: never cached."""
        response = Response(data)
        add_never_cache_headers(response)
        return response


class CodeAPIView(TOTPAPIView):
    """An endpoint that takes a code: throttled per user and per client IP."""

    serializer_class = serializers.TokenSerializer
    throttle_classes = [CodeUserThrottle, CodeIPThrottle]


class GenerateView(TOTPAPIView):
    """Start enrollment (or restart it): a new secret, its otpauth URL and QR code. A user whose
    device has a weak secret may enroll a replacement with a credential that passed 2FA."""

    def post(self, request: Request) -> Response:
        self.validated(request)
        passed = IsOTPVerified().has_permission(request, self)
        device = devices.start_enrollment(self.user, second_factor_passed=passed)
        url = devices.provisioning_uri(device)
        body = {"secret": device.secret, "otpauth_url": url, "qr_svg": qr.svg_data_uri(url)}
        return self.no_store(serializers.GenerateResponseSerializer(body).data)


class VerifyView(CodeAPIView):
    """Confirm the pending device with its first code: 2FA is on. Returns the recovery codes."""

    def post(self, request: Request) -> Response:
        token = self.validated(request)["token"]
        accepted, codes = devices.confirm(self.user, token, request=request)
        # The code just proved the device: this credential passed the second factor.
        marks.mark_request(request, accepted.device, accepted.at)
        body = {"detail": _("Two-factor authentication is enabled."), "enabled": True}
        return self.no_store({**body, "recovery_codes": codes})


class StatusView(TOTPAPIView):
    """The user's 2FA state."""

    # Making a serializer deep-copies its fields, which costs more than this view's query. Its
    # output needs no context or input, so one instance serves every request.
    output = serializers.StatusSerializer()

    def get(self, request: Request) -> Response:
        return Response(self.output.to_representation(devices.status(self.user)))


class ValidateView(CodeAPIView):
    """The second factor for a logged-in credential: a TOTP code or a recovery code."""

    def post(self, request: Request) -> Response:
        token = self.validated(request)["token"]
        action = marks.recording(request)  # a token's mark commits with the accepted code
        accepted = devices.authenticate(self.user, token, request=request, action=action)
        if marks.is_session(request):
            marks.mark_request(request, accepted.device, accepted.at)
        # no-store: a session's mark comes with a new session key.
        return self.no_store({"detail": _("Code accepted."), "enabled": True})


class DisableView(CodeAPIView):
    """Turn 2FA off with a TOTP or recovery code (and the password, if so configured)."""

    serializer_class = serializers.DisableSerializer

    def post(self, request: Request) -> Response:
        data = self.validated(request)
        devices.disable(self.user, data["token"], password=data.get("password"), request=request)
        return Response({"detail": _("Two-factor authentication is disabled."), "enabled": False})


class RecoveryCodesView(CodeAPIView):
    """Replace the recovery codes, given a TOTP code."""

    def post(self, request: Request) -> Response:
        token = self.validated(request)["token"]
        codes = devices.regenerate_recovery_codes(self.user, token, request=request)
        return self.no_store({"recovery_codes": codes})


class LoginAPIView(TOTPAPIView):
    """Anonymous endpoints of the two-step login."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Resolve the issuer first: a bad setting must fail before a code or ticket is used up.
        self.issuer = get_issuer()
        super().initial(request, *args, **kwargs)


class LoginView(LoginAPIView):
    """Step one: the password. Without 2FA, the credential; with 2FA, a ticket for step two."""

    serializer_class = serializers.LoginSerializer
    throttle_classes = [LoginIPThrottle, LoginUsernameThrottle]

    def post(self, request: Request) -> Response:
        data = self.validated(request)
        step = login.start(request, data["username"], data["password"])
        if step.ticket is None:
            body = self.issuer.issue(request, step.user, None, timezone.now())
            if step.enrollment_required:  # the client sends the user to generate/ and verify/
                body = {**body, "mfa_enrollment_required": True}
            return self.no_store(body)
        max_age = totp_settings.TICKET_MAX_AGE
        return self.no_store({"mfa_required": True, "ticket": step.ticket, "expires_in": max_age})


class LoginVerifyView(LoginAPIView):
    """Step two: the ticket and a TOTP or recovery code. Returns the credential."""

    serializer_class = serializers.LoginVerifySerializer
    throttle_classes = [LoginIPThrottle]

    def post(self, request: Request) -> Response:
        data = self.validated(request)

        def issue(accepted: Accepted) -> dict[str, Any]:
            return self.issuer.issue(request, accepted.device.user, accepted.device, accepted.at)

        # The credential is issued in the transaction that uses up the code and the ticket.
        return self.no_store(login.finish(data["ticket"], data["token"], issue, request=request))
