"""``IsOTPVerified``: the permission integrators put on their own views."""

from __future__ import annotations

import time
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from . import marks, policy
from .models import TOTPDevice


class IsOTPVerified(BasePermission):
    """Allows a user without 2FA, or a credential that passed the second factor; denies the rest.

    A user without 2FA whom ``TOTP_REQUIRED`` covers (past any grace period) is denied with
    ``otp_enrollment_required``: drf-totp's enrollment endpoints do not use this permission, so
    they stay open to that user.

    It fails closed: an anonymous request, or a credential it cannot read a mark from (e.g. HTTP
    Basic) for a user with 2FA, is denied. ``IsOTPVerified.with_max_age(300)`` also demands that
    the second factor was passed at most 300 seconds ago, for sensitive views.
    """

    message = _("Two-factor authentication is required.")
    code = "otp_required"
    max_age: int | None = None

    @classmethod
    def with_max_age(cls, seconds: int) -> type[IsOTPVerified]:
        attrs = {
            "max_age": seconds,
            "message": _("Confirm with a current code to continue."),
            "code": "otp_recent_required",
        }
        return type(f"IsOTPVerifiedWithin{seconds}s", (cls,), attrs)

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        device_pk = (
            TOTPDevice.objects.filter(user=user, is_confirmed=True)
            .values_list("pk", flat=True)
            .first()
        )
        if device_pk is None:
            if policy.enforced(user, timezone.now()):
                self.message, self.code = policy.MESSAGE, policy.CODE
                return False
            return True
        at = marks.verified_at(request, device_pk)
        if at is None:
            return False
        return self.max_age is None or time.time() - at <= self.max_age
