from __future__ import annotations

import hashlib
from typing import Any

import pyotp
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from . import exceptions, otp
from .fields import EncryptedTextField

NOT_A_KEY = (
    "the secret is no TOTP key (not base32, or empty): the user should enroll again, or an "
    "administrator reset their 2FA"
)


class Algorithm(models.TextChoices):
    SHA1 = "SHA1", "SHA1"
    SHA256 = "SHA256", "SHA256"
    SHA512 = "SHA512", "SHA512"


class TOTPDevice(models.Model):
    """A user's authenticator: its secret, its parameters and the state of code checking."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="totp_devices",
        verbose_name=_("user"),
    )
    name = models.CharField(
        _("name"), max_length=64, default="default", help_text=_("Tells a user's devices apart.")
    )
    secret = EncryptedTextField(
        _("secret"), help_text=_("The shared secret, base32; stored encrypted (Fernet).")
    )
    weak_secret = models.BooleanField(
        _("weak secret"),
        default=False,
        editable=False,
        help_text=_(
            "The secret is under 112 bits (older packages issued such keys) or no key at all: "
            "the user should enroll again. Set whenever the secret is written."
        ),
    )
    digits = models.PositiveSmallIntegerField(_("digits"), default=6)
    period = models.PositiveSmallIntegerField(
        _("period"), default=30, help_text=_("Seconds per step.")
    )
    algorithm = models.CharField(
        _("algorithm"), max_length=6, choices=Algorithm.choices, default=Algorithm.SHA1
    )
    is_confirmed = models.BooleanField(
        _("confirmed"),
        default=False,
        help_text=_("Set once the user proved the app produces codes."),
    )
    created_at = models.DateTimeField(_("created at"))
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    last_used_step = models.BigIntegerField(
        _("last used step"),
        default=0,
        help_text=_(
            "Time step of the last accepted code; codes of this step or earlier are refused."
        ),
    )
    use_count = models.PositiveBigIntegerField(
        _("uses"), default=0, help_text=_("Codes accepted so far (TOTP and recovery).")
    )
    failure_count = models.PositiveIntegerField(
        _("consecutive failures"), default=0, help_text=_("Wrong codes since the last success.")
    )
    locked_until = models.DateTimeField(
        _("locked until"),
        null=True,
        blank=True,
        help_text=_("No code is checked before this time."),
    )

    class Meta:
        verbose_name = _("TOTP device")
        verbose_name_plural = _("TOTP devices")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"], name="drf_totp_device_unique_user_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The flag is kept next to the secret, so that status can say so without decrypting it.
        update_fields = kwargs.get("update_fields")
        if "secret" not in self.get_deferred_fields() and (
            update_fields is None or "secret" in update_fields
        ):
            self.weak_secret = otp.is_weak(self.secret)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "weak_secret"}
        super().save(*args, **kwargs)

    def totp(self) -> pyotp.TOTP:
        """The device's code generator. Raises ``SecretUnavailable`` (``SecretInvalid``) if the
        secret cannot be decrypted (is no TOTP key), after logging which device it is."""
        secret = self.secret
        try:
            return otp.AnyLengthTOTP(
                secret,
                digits=self.digits,
                digest=getattr(hashlib, self.algorithm.lower()),
                interval=self.period,
            )
        except ValueError:  # binascii.Error too
            raise exceptions.SecretInvalid(NOT_A_KEY, device=self) from None


def secret_columns(secret: str) -> dict[str, Any]:
    """The columns to write for a new ``secret`` with ``update()`` (``save()`` sets them itself)."""
    return {"secret": secret, "weak_secret": otp.is_weak(secret)}


class RecoveryCode(models.Model):
    """One single-use recovery code, kept only as a keyed hash (HMAC-SHA256)."""

    class Format(models.TextChoices):
        """The form a code came in: drf-totp's own, or a code brought over by ``totp_import``."""

        DRF_TOTP = "drf-totp", "drf-totp"
        DJANGO_OTP = "django-otp", _("django-otp static token")
        ALLAUTH = "allauth", _("django-allauth recovery code")
        DRF_TOTP_0_2 = "drf-totp-0.2", _("drf-totp 0.2 backup code")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="totp_recovery_codes",
        verbose_name=_("user"),
    )
    digest = models.CharField(
        _("digest"), max_length=64, help_text=_("HMAC-SHA256 of the code; the code is not stored.")
    )
    format = models.CharField(
        _("format"),
        max_length=16,
        choices=Format.choices,
        default=Format.DRF_TOTP,
        help_text=_("The form the code came in; it says how a typed code is read and hashed."),
    )
    created_at = models.DateTimeField(_("created at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("recovery code")
        verbose_name_plural = _("recovery codes")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "digest"], name="drf_totp_recovery_unique_digest"
            ),
        ]

    def __str__(self) -> str:
        state = _("used") if self.used_at else _("unused")
        return f"{self.user} ({state})"


class VerifiedToken(models.Model):
    """Marks an opaque API token (drf-totp's ``LoginToken``, knox) as having passed the second
    factor. Such tokens carry no claims, so ``IsOTPVerified`` looks them up here by digest; a
    mark goes when its token goes.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="totp_verified_tokens",
        verbose_name=_("user"),
    )
    digest = models.CharField(
        _("digest"),
        max_length=128,
        unique=True,
        help_text=_("The digest of the token: SHA-256 of a login token, or knox's digest."),
    )
    device_id = models.BigIntegerField(
        _("device"), help_text=_("The device that passed; a re-enrolled device does not count.")
    )
    verified_at = models.DateTimeField(_("verified at"))

    class Meta:
        verbose_name = _("verified token")
        verbose_name_plural = _("verified tokens")

    def __str__(self) -> str:
        return f"{self.user} @ {self.verified_at:%Y-%m-%d %H:%M}"


class LoginToken(models.Model):
    """An API token issued by drf-totp's login (``TOTP_LOGIN_CREDENTIAL = "authtoken"``).

    Only drf-totp's issuer creates them, so no password-only endpoint can hand one out. A user
    may hold several (one per device or app); the key itself is never stored, only its digest.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="totp_login_tokens",
        verbose_name=_("user"),
    )
    digest = models.CharField(
        _("digest"),
        max_length=64,
        unique=True,
        help_text=_("SHA-256 of the token; the token is not stored."),
    )
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("login token")
        verbose_name_plural = _("login tokens")

    def __str__(self) -> str:
        return f"{self.user} @ {self.created_at:%Y-%m-%d %H:%M}"


class ImportRecord(models.Model):
    """A device ``totp_import`` brought over: kept after the device is gone, so that an import
    never brings back a secret that was disabled or reset (unless asked for by name)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="totp_imports",
        verbose_name=_("user"),
    )
    source = models.CharField(
        _("source"), max_length=16, help_text=_("The package the device came from.")
    )
    source_id = models.CharField(
        _("source id"), max_length=64, help_text=_("The device's primary key in that package.")
    )
    imported_at = models.DateTimeField(_("imported at"))

    class Meta:
        verbose_name = _("imported device")
        verbose_name_plural = _("imported devices")
        constraints = [
            models.UniqueConstraint(
                fields=["source", "source_id"], name="drf_totp_import_unique_source_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} #{self.source_id} ({self.user})"
