"""Request and response bodies. Input is strict: unknown keys and non-string codes are refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from .settings import totp_settings

# Long enough for any code we issue with separators; short enough that nothing costly is done.
MAX_TOKEN_LENGTH = 64


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not declare, so a misspelt field is an error, not a silent no-op."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unexpected = sorted(set(data) - set(self.fields))
            if unexpected:
                message = str(_("Unexpected field."))
                raise serializers.ValidationError(
                    {key: [ErrorDetail(message, code="unexpected_field")] for key in unexpected}
                )
        return super().to_internal_value(data)


class TokenField(serializers.Field):
    """A code as a JSON string; its exact form is checked against the device by the domain."""

    default_error_messages = {
        "invalid": _("Send the code as a string."),
        "blank": _("Enter the code from your authenticator app."),
        "max_length": _("The code is too long."),
    }

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if not data:
            self.fail("blank")
        if len(data) > MAX_TOKEN_LENGTH:
            self.fail("max_length")
        return data

    def to_representation(self, value: Any) -> str:
        return str(value)


class EmptySerializer(StrictSerializer):
    pass


class TokenSerializer(StrictSerializer):
    token = TokenField(
        help_text=_(
            'The current code from the authenticator app, e.g. "123456", or where '
            'accepted a recovery code, e.g. "ABCDE-FGHJK-MNPQR-STVWX".'
        )
    )


class DisableSerializer(TokenSerializer):
    password = serializers.CharField(
        required=False,
        trim_whitespace=False,
        max_length=4096,
        write_only=True,
        help_text=_("The account password; required when TOTP_DISABLE_REQUIRES_PASSWORD is on."),
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["password"].required = bool(totp_settings.DISABLE_REQUIRES_PASSWORD)
        return fields


class LoginSerializer(StrictSerializer):
    """The user model's USERNAME_FIELD and ``password``."""

    password = serializers.CharField(trim_whitespace=False, max_length=4096, write_only=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields[get_user_model().USERNAME_FIELD] = serializers.CharField(max_length=254)
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Always ``{"username", "password"}``, whatever the USERNAME_FIELD is called."""
        return {"username": attrs[get_user_model().USERNAME_FIELD], "password": attrs["password"]}


class LoginVerifySerializer(TokenSerializer):
    ticket = serializers.CharField(max_length=1024, help_text=_("The ticket from /otp/login/."))


class GenerateResponseSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text=_("Base32 secret, for manual entry in the app."))
    otpauth_url = serializers.CharField(help_text=_("otpauth:// URL for the QR code."))
    qr_svg = serializers.CharField(help_text=_("The QR code of otpauth_url as a data: URI (SVG)."))


class StatusSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(help_text=_("A confirmed device exists: 2FA is on."))
    pending = serializers.BooleanField(help_text=_("A device awaits confirmation with /verify/."))
    confirmed_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    locked_until = serializers.DateTimeField(
        allow_null=True, help_text=_("Codes are refused before this time.")
    )
    locked_out = serializers.BooleanField(
        help_text=_("Too many failures: codes stay refused until a recovery code or an admin.")
    )
    recovery_codes_remaining = serializers.IntegerField()
    weak_secret = serializers.BooleanField(
        help_text=_(
            "The secret is under 112 bits (from an older package) or no key at all: "
            "generate/ then verify/ replace it, with 2FA on."
        )
    )


class EnabledSerializer(serializers.Serializer):
    detail = serializers.CharField()
    enabled = serializers.BooleanField()


class RecoveryCodesSerializer(serializers.Serializer):
    recovery_codes = serializers.ListField(
        child=serializers.CharField(), help_text=_("Shown once; each works once.")
    )


class ConfirmedSerializer(EnabledSerializer, RecoveryCodesSerializer):
    pass


class LoginResponseSerializer(serializers.Serializer):
    """Either a ticket (``mfa_required``) or the credential, whose fields depend on
    ``TOTP_LOGIN_CREDENTIAL``."""

    mfa_required = serializers.BooleanField(required=False)
    mfa_enrollment_required = serializers.BooleanField(
        required=False,
        help_text=_(
            "With the credential of a user whom TOTP_REQUIRED covers and who has no 2FA yet: "
            "enroll with /otp/generate/ and /otp/verify/."
        ),
    )
    ticket = serializers.CharField(required=False, help_text=_("For /otp/login/verify/."))
    expires_in = serializers.IntegerField(required=False, help_text=_("Seconds the ticket lives."))
    detail = serializers.CharField(required=False, help_text=_("Session credential."))
    token = serializers.CharField(required=False, help_text=_("DRF or knox token."))
    expiry = serializers.DateTimeField(required=False, allow_null=True, help_text=_("knox expiry."))
    access = serializers.CharField(required=False, help_text=_("SimpleJWT access token."))
    refresh = serializers.CharField(required=False, help_text=_("SimpleJWT refresh token."))


class FieldErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    code = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """The body of every error response."""

    detail = serializers.CharField()
    code = serializers.CharField(help_text=_("Stable, machine-readable."))
    # A field named like Serializer.errors: DRF's metaclass takes it out of the class attributes.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=FieldErrorSerializer(many=True), required=False, help_text=_("Per input field.")
    )
    retry_after = serializers.IntegerField(
        required=False, help_text=_("Seconds to wait: with the 429 and 503 answers.")
    )
    locked_until = serializers.DateTimeField(required=False, help_text=_("With code 'locked'."))
