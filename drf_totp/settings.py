"""The package's settings: flat ``TOTP_*`` names with their defaults in one place.

Values are read from ``django.conf.settings`` each time they are used, so ``override_settings``
and settings changed at run time always take effect.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

DEFAULTS: dict[str, Any] = {
    # Shown by authenticator apps next to the account.
    "TOTP_ISSUER_NAME": "drftotp",
    # Parameters of new enrollments; existing devices keep the ones they were enrolled with.
    "TOTP_DIGITS": 6,
    "TOTP_PERIOD": 30,
    "TOTP_ALGORITHM": "SHA1",
    # Steps accepted on either side of the current one (0 or 1).
    "TOTP_VALID_WINDOW": 1,
    # Fernet keys, newest first. Empty: a key is derived from SECRET_KEY (and its fallbacks).
    "TOTP_ENCRYPTION_KEYS": [],
    # Consecutive failures allowed before the first lock.
    "TOTP_FREE_FAILURES": 4,
    # First lock, doubled with each further failure up to the cap.
    "TOTP_LOCKOUT_SECONDS": 30,
    "TOTP_LOCKOUT_MAX_SECONDS": 3600,
    # Consecutive failures after which TOTP stays refused until a recovery code or an admin.
    "TOTP_MAX_FAILURES": 100,
    # Recovery codes issued when a device is confirmed or the codes are regenerated.
    "TOTP_RECOVERY_CODES_COUNT": 10,
    # The login ticket: seconds between the password and the code.
    "TOTP_TICKET_MAX_AGE": 300,
    # The credential POST /otp/login/ issues: "session", "authtoken", "simplejwt", "knox", or a
    # dotted path to a drf_totp.credentials.CredentialIssuer subclass.
    "TOTP_LOGIN_CREDENTIAL": "session",
    # "authtoken": how many login tokens a user keeps; a login beyond them ends the oldest.
    "TOTP_LOGIN_TOKENS_PER_USER": 10,
    # Who must have 2FA: False (nobody), True (everyone), or the dotted path of a
    # callable(user) -> bool. Their credentials get 403 otp_enrollment_required from IsOTPVerified
    # until they enroll.
    "TOTP_REQUIRED": False,
    # Days from the user's date_joined before TOTP_REQUIRED applies (0: none; no date_joined: none).
    "TOTP_REQUIRED_GRACE_DAYS": 0,
    # Ask for the password too when disabling 2FA.
    "TOTP_DISABLE_REQUIRES_PASSWORD": False,
    # When the throttles' cache fails: False lets requests through (the lock in the database
    # still limits guesses), True refuses them with a 503 until the cache is back.
    "TOTP_THROTTLE_FAIL_CLOSED": False,
    # E-mail the user (if they have an address) when 2FA is turned on or off, recovery codes are
    # regenerated or used, the account is locked or locked out (drf_totp/notifications.py).
    "TOTP_NOTIFY": True,
    # None: the built-in e-mail; else the dotted path of a callable(event, user, context).
    "TOTP_NOTIFIER": None,
}


class AppSettings:
    """Attribute access to the ``TOTP_*`` settings: ``totp_settings.ISSUER_NAME``."""

    def __getattr__(self, name: str) -> Any:
        key = f"TOTP_{name}"
        if key not in DEFAULTS:
            raise AttributeError(name)
        return getattr(django_settings, key, DEFAULTS[key])


totp_settings = AppSettings()
