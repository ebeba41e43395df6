"""Thin HTTP views: parse the body, call the domain, shape the answer."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import devices, qr, serializers, session
from .exceptions import exception_handler
from .throttling import CodeIPThrottle, CodeUserThrottle


# Not wrapped in ATOMIC_REQUESTS: a failed guess must stay counted when the view answers with an
# error (DRF rolls the request's transaction back on errors).
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class TOTPAPIView(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]
    serializer_class: type[serializers.serializers.Serializer] = serializers.EmptySerializer

    def get_exception_handler(self) -> Any:
        return exception_handler

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        return self.serializer_class(*args, context={"request": self.request, "view": self}, **kwargs)

    def validated(self, request: Request) -> dict[str, Any]:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def no_store(self, data: dict[str, Any]) -> Response:
        response = Response(data)
        add_never_cache_headers(response)
        return response


class CodeAPIView(TOTPAPIView):
    """An endpoint that takes a code: throttled per user and per client IP."""

    serializer_class = serializers.TokenSerializer
    throttle_classes = [CodeUserThrottle, CodeIPThrottle]


class GenerateView(TOTPAPIView):
    """Start enrollment (or restart it): a new secret, its otpauth URL and QR code."""

    def post(self, request: Request) -> Response:
        self.validated(request)
        device = devices.start_enrollment(request.user)
        url = devices.provisioning_uri(device)
        body = {"secret": device.secret, "otpauth_url": url, "qr_svg": qr.svg_data_uri(url)}
        return self.no_store(serializers.GenerateResponseSerializer(body).data)


class VerifyView(CodeAPIView):
    """Confirm the pending device with its first code: 2FA is on."""

    def post(self, request: Request) -> Response:
        token = self.validated(request)["token"]
        devices.confirm(request.user, token)
        return self.no_store({"detail": _("Two-factor authentication is enabled."), "enabled": True})


class StatusView(TOTPAPIView):
    """The user's 2FA state."""

    def get(self, request: Request) -> Response:
        state = devices.status(request.user)
        return Response(serializers.StatusSerializer(state).data)


class ValidateView(CodeAPIView):
    """The second factor at login: check a code of the confirmed device."""

    def post(self, request: Request) -> Response:
        token = self.validated(request)["token"]
        now = timezone.now()
        device = devices.authenticate(request.user, token, now=now)
        session.mark_verified(request, device, now)
        return Response({"detail": _("Code accepted."), "enabled": True})


class DisableView(CodeAPIView):
    """Turn 2FA off with a current code: the device is deleted."""

    def post(self, request: Request) -> Response:
        token = self.validated(request)["token"]
        devices.disable(request.user, token)
        return Response({"detail": _("Two-factor authentication is disabled."), "enabled": False})
