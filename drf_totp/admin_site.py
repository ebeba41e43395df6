"""The Django admin behind the second factor: ``OTPAdminSite`` and its login form.

A user with 2FA logs in to the admin with username, password and a code (TOTP or recovery code),
checked by ``devices.authenticate`` like every code (the lock, the replay rule and the guess
budget apply); the session is then marked as ``login/verify/`` marks it. The site's pages need
that mark for the user's current device, so a session logged in with the password alone
elsewhere (a plain Django login view, ``client.login()``) does not open them.

A staff user whom ``TOTP_REQUIRED`` covers (past any grace period) and who has no confirmed device
is refused at the login, with a message that sends them to set up 2FA (through the API, e.g. the
project's own enrollment page: the admin has none), and its pages refuse a session they already
had.

``"drf_totp.apps.OTPAdminConfig"`` in place of ``"django.contrib.admin"`` in ``INSTALLED_APPS``
makes it the project's default site (``admin.site``). This module registers no model: the
default site is made from it while the admin modules are being imported.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import SESSION_KEY
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from rest_framework.exceptions import APIException

from . import devices, exceptions, marks, policy
from .models import TOTPDevice
from .reports import secret_request
from .serializers import MAX_TOKEN_LENGTH


def session_passed_2fa(request: HttpRequest) -> bool:
    """True if the user has no 2FA and need not have it, or if their session passed it on their
    current device."""
    device_pk = (
        TOTPDevice.objects.filter(user=request.user, is_confirmed=True)
        .values_list("pk", flat=True)
        .first()
    )
    if device_pk is None:
        return not policy.enforced(request.user, timezone.now())
    return marks.session_verified_at(request.session, device_pk) is not None


def _form_error(exc: APIException) -> ValidationError:
    """The package's error (a wrong code, a lock, ...) as a form error, message and code kept."""
    detail: Any = exc.detail
    while isinstance(detail, (dict, list)):  # a field error: {"token": [message]}
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return ValidationError(str(detail), code=getattr(detail, "code", None))


class CodeInput(forms.TextInput):
    """A text input that never sends a code back to the browser, as a password input does."""

    def format_value(self, value: Any) -> str | None:
        return None


class OTPAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, with the code of a user who has 2FA."""

    otp_token = forms.CharField(
        label=_("Two-factor code"),
        required=False,
        max_length=MAX_TOKEN_LENGTH,
        help_text=_("From your authenticator app, or a recovery code. Only if you use 2FA."),
        widget=CodeInput(attrs={"autocomplete": "one-time-code", "spellcheck": "false"}),
    )

    @sensitive_variables()
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()  # the password: a wrong one stops here, before any code
        user = self.get_user()
        if user is None or self.has_error("otp_token"):  # a field error is shown already
            return cleaned
        try:
            accepted = devices.authenticate(
                user, cleaned.get("otp_token", ""), request=self.request
            )
        except exceptions.NotEnabled:
            if policy.enforced(user, timezone.now()):
                raise ValidationError(policy.MESSAGE, code=policy.CODE) from None
            return cleaned  # no 2FA: the password is all there is
        except APIException as exc:  # no code, a wrong one, a lock, ...
            raise ValidationError({"otp_token": _form_error(exc)}) from None
        session = self.request.session  # type: ignore[union-attr]
        # login() keeps the key of a session its user was already logged in with, and empties
        # the session of another user. So the mark goes into a session nobody is logged in with
        # (emptied if need be), which login() gives a new key, keeping the mark.
        if SESSION_KEY in session:
            session.flush()
        marks.mark_session(session, accepted.device, accepted.at)
        return cleaned


class OTPAdminSite(admin.AdminSite):
    """An ``AdminSite`` whose login asks users with 2FA for their code, and whose pages need it."""

    login_form = OTPAuthenticationForm
    login_template = "drf_totp/admin/login.html"

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and session_passed_2fa(request)

    # Django's login view as it is (never cached, open to anonymous users), its request marked:
    # the password reaches authentication backends whose variables no mark of theirs hides.
    login = method_decorator(secret_request)(admin.AdminSite.login)
