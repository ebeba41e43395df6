"""Who must have 2FA: ``TOTP_REQUIRED`` and its grace period ``TOTP_REQUIRED_GRACE_DAYS``.

``TOTP_REQUIRED`` is ``False`` (nobody), ``True`` (everyone), or the dotted path of a
``callable(user) -> bool`` (e.g. staff only). A required user gets ``TOTP_REQUIRED_GRACE_DAYS``
days from ``date_joined`` before the requirement applies; a user model without ``date_joined``
gets no grace. Whether the user has a confirmed device is the callers' business: they look it up
anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from .settings import totp_settings

# The denial of a required user without a confirmed device, from IsOTPVerified and the admin.
MESSAGE = _("Two-factor authentication is required: set it up to continue.")
CODE = "otp_enrollment_required"


def rule() -> bool | Callable[[Any], bool]:
    """``TOTP_REQUIRED`` as a bool or the callable it names (ImportError if it names none)."""
    value = totp_settings.REQUIRED
    return import_string(value) if isinstance(value, str) else value


def required(user: Any) -> bool:
    """True if ``TOTP_REQUIRED`` covers ``user`` (grace period or not)."""
    value = rule()
    return bool(value(user)) if callable(value) else bool(value)


def grace_ends(user: Any) -> datetime | None:
    """When the user's grace period ends; None without one."""
    days = totp_settings.REQUIRED_GRACE_DAYS
    joined = getattr(user, "date_joined", None)
    if not days or joined is None:
        return None
    return joined + timedelta(days=days)


def enforced(user: Any, now: datetime) -> bool:
    """True if ``user`` must have a confirmed device at ``now``: required, and no grace left."""
    if not required(user):
        return False
    ends = grace_ends(user)
    return ends is None or now >= ends
