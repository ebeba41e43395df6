"""System checks: ``manage.py check`` fails on an unusable setting and warns about weak ones;
``manage.py check --database default`` (and ``migrate``) also fails when stored secrets cannot be
decrypted with the configured keys."""

from __future__ import annotations

from typing import Any, cast

from cryptography.fernet import Fernet
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.utils.module_loading import import_string
from rest_framework.settings import api_settings

from . import policy
from .fields import Unreadable
from .models import Algorithm, TOTPDevice
from .settings import DEFAULTS, totp_settings
from .throttling import DEFAULT_RATES


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@register(Tags.security)
def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    keys = totp_settings.ENCRYPTION_KEYS
    if not isinstance(keys, (list, tuple)):
        return [
            Error(
                "TOTP_ENCRYPTION_KEYS must be a list of Fernet keys, newest first.",
                hint='Generate one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"',
                id="drf_totp.E001",
            )
        ]
    errors = []
    for index, key in enumerate(keys):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            errors.append(
                Error(
                    f"TOTP_ENCRYPTION_KEYS[{index}] is not a usable Fernet key "
                    "(32 bytes, url-safe base64).",
                    hint="Generate one with Fernet.generate_key(); never reuse SECRET_KEY itself.",
                    id="drf_totp.E001",
                )
            )
    return errors


# The database check decrypts the newest secrets (written under today's keys, if anything is)
# and the oldest one (the likeliest to predate a change of keys).
NEWEST_SAMPLE = 5


@register(Tags.database)
def check_secrets_decrypt(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[Error]:
    """A sample of the stored secrets decrypts: a changed key shows here, not as failed logins."""
    errors = []
    for alias in databases or ():
        if not router.allow_migrate_model(alias, TOTPDevice):
            continue
        if TOTPDevice._meta.db_table not in connections[alias].introspection.table_names():
            continue  # before the first migrate
        rows = TOTPDevice.objects.using(alias).values_list("pk", "secret")
        sample = dict([*rows.order_by("-pk")[:NEWEST_SAMPLE], *rows.order_by("pk")[:1]])
        unreadable = {pk: s for pk, s in sample.items() if isinstance(s, Unreadable)}
        if not unreadable:
            continue
        pks = ", ".join(str(pk) for pk in sorted(unreadable))
        errors.append(
            Error(
                f"{len(unreadable)} of {len(sample)} TOTP secrets sampled in database {alias!r} "
                f"cannot be decrypted (devices {pks}): {next(iter(unreadable.values())).cause}. "
                "Their users get 503 secret_unavailable instead of a login.",
                hint="Put the key that encrypted them back (the old SECRET_KEY in "
                "SECRET_KEY_FALLBACKS, or the removed key in TOTP_ENCRYPTION_KEYS), then run "
                "manage.py totp_rotate_keys, which names every secret it cannot decrypt.",
                id="drf_totp.E011",
            )
        )
    return errors


# Settings of check_code_settings' whole numbers for which 0 makes sense (none free, no grace).
ZERO_ALLOWED = ("FREE_FAILURES", "REQUIRED_GRACE_DAYS")


@register()
def check_code_settings(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    messages: list[Error | Warning] = []
    s = totp_settings

    def error(text: str, id: str) -> None:
        messages.append(Error(text, id=f"drf_totp.{id}"))

    def warn(text: str, id: str) -> None:
        messages.append(Warning(text, id=f"drf_totp.{id}"))

    if s.VALID_WINDOW not in (0, 1) or not _is_int(s.VALID_WINDOW):
        error("TOTP_VALID_WINDOW must be 0 or 1: a wider window accepts more guesses.", "E002")
    if s.DIGITS not in (6, 8) or not _is_int(s.DIGITS):
        error("TOTP_DIGITS must be 6 or 8.", "E003")
    if s.ALGORITHM not in Algorithm.values:
        error(f"TOTP_ALGORITHM must be one of {', '.join(Algorithm.values)}.", "E004")
    if not _is_int(s.PERIOD) or not 15 <= s.PERIOD <= 120:
        error("TOTP_PERIOD must be a whole number of seconds from 15 to 120.", "E005")
    if not isinstance(s.ISSUER_NAME, str) or not s.ISSUER_NAME or ":" in s.ISSUER_NAME:
        error("TOTP_ISSUER_NAME must be a non-empty string without ':'.", "E006")
    for name in (
        "FREE_FAILURES",
        "LOCKOUT_SECONDS",
        "LOCKOUT_MAX_SECONDS",
        "MAX_FAILURES",
        "RECOVERY_CODES_COUNT",
        "TICKET_MAX_AGE",
        "LOGIN_TOKENS_PER_USER",
        "REQUIRED_GRACE_DAYS",
    ):
        value = getattr(s, name)
        if not _is_int(value) or value < (0 if name in ZERO_ALLOWED else 1):
            error(f"TOTP_{name} must be a positive whole number.", "E007")
    if not isinstance(s.THROTTLE_FAIL_CLOSED, bool):
        error("TOTP_THROTTLE_FAIL_CLOSED must be True or False.", "E009")
    if messages:
        return messages
    if s.FREE_FAILURES > 10:
        warn("TOTP_FREE_FAILURES above 10 lets guesses run unchecked for longer.", "W001")
    if s.MAX_FAILURES > DEFAULTS["TOTP_MAX_FAILURES"]:
        warn("TOTP_MAX_FAILURES above 100 exceeds NIST SP 800-63B's limit.", "W002")
    if s.LOCKOUT_SECONDS < DEFAULTS["TOTP_LOCKOUT_SECONDS"] or s.LOCKOUT_MAX_SECONDS < 600:
        warn("Short TOTP lockouts raise the number of guesses an attacker gets per day.", "W003")
    rates = api_settings.DEFAULT_THROTTLE_RATES or {}
    for scope in DEFAULT_RATES:
        if scope in rates and rates[scope] is None:
            warn(
                f"The '{scope}' throttle is disabled; only the database lock limits guesses.",
                "W004",
            )
    return messages


@register(Tags.security)
def check_required(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """``TOTP_REQUIRED`` is a bool or names a callable: else who must have 2FA is unknown."""
    value = totp_settings.REQUIRED
    if isinstance(value, str):
        try:
            usable = callable(policy.rule())
        except ImportError as exc:
            error = f"TOTP_REQUIRED = {value!r} cannot be imported: {exc}"
            return [Error(error, id="drf_totp.E012")]
    else:
        usable = isinstance(value, bool)
    if usable:
        return []
    return [
        Error(
            f"TOTP_REQUIRED = {value!r} is unusable: it must be True, False, or the dotted path "
            "of a callable(user) -> bool.",
            id="drf_totp.E012",
        )
    ]


@register()
def check_notifier(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """``TOTP_NOTIFIER`` is None or names a callable: else no notification could be sent."""
    value = totp_settings.NOTIFIER
    if value is None:
        return []
    try:
        usable = isinstance(value, str) and callable(import_string(value))
    except ImportError as exc:
        return [Error(f"TOTP_NOTIFIER = {value!r} cannot be imported: {exc}", id="drf_totp.E013")]
    if usable:
        return []
    error = (
        f"TOTP_NOTIFIER = {value!r} is unusable: it must be None or the dotted path of a callable."
    )
    return [Error(error, id="drf_totp.E013")]


# What each built-in credential needs in INSTALLED_APPS (simplejwt needs only to be importable;
# "authtoken" issues drf-totp's own tokens, see check_token_authentication).
_CREDENTIAL_APPS = {"knox": "knox"}


@register()
def check_login_credential(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from django.apps import apps

    from .credentials import get_issuer

    name = totp_settings.LOGIN_CREDENTIAL
    try:
        get_issuer()
    except (ImportError, ImproperlyConfigured) as exc:
        return [Error(f"TOTP_LOGIN_CREDENTIAL = {name!r} is unusable: {exc}", id="drf_totp.E008")]
    app = _CREDENTIAL_APPS.get(name)
    if app and not apps.is_installed(app):
        return [
            Error(
                f"TOTP_LOGIN_CREDENTIAL = {name!r} needs {app!r} in INSTALLED_APPS.",
                id="drf_totp.E008",
            )
        ]
    if name == "simplejwt":
        try:
            import rest_framework_simplejwt  # noqa: F401
        except ImportError:
            return [
                Error(
                    "TOTP_LOGIN_CREDENTIAL = 'simplejwt' needs djangorestframework-simplejwt: "
                    "pip install drf-totp[simplejwt].",
                    id="drf_totp.E008",
                )
            ]
    return []


_OUR_TOKENS = "drf_totp.authentication.TokenAuthentication"


def _reads_other_tokens(cls: type) -> bool:
    """A class that takes ``Authorization: Token`` keys and refuses those it does not know: DRF's
    ``TokenAuthentication`` (and subclasses other than drf-totp's) and knox's."""
    from rest_framework.authentication import TokenAuthentication

    from .authentication import TokenAuthentication as LoginTokenAuthentication

    if issubclass(cls, LoginTokenAuthentication):
        return False
    return issubclass(cls, TokenAuthentication) or cls.__module__.startswith("knox.")


@register(Tags.security)
def check_token_authentication(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """With "authtoken", the class that reads drf-totp's tokens must be in the defaults, before
    DRF's (or knox's) ``TokenAuthentication``, which would refuse drf-totp's keys as invalid."""
    from .authentication import TokenAuthentication as LoginTokenAuthentication

    if totp_settings.LOGIN_CREDENTIAL != "authtoken":
        return []
    classes = cast(list[type], list(api_settings.DEFAULT_AUTHENTICATION_CLASSES))  # imported
    ours = [i for i, cls in enumerate(classes) if issubclass(cls, LoginTokenAuthentication)]
    theirs = [i for i, cls in enumerate(classes) if _reads_other_tokens(cls)]
    if not ours:
        problem = f"needs {_OUR_TOKENS!r} in REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES']"
    elif theirs and theirs[0] < ours[0]:
        problem = (
            f"needs {_OUR_TOKENS!r} before {classes[theirs[0]].__module__}."
            f"{classes[theirs[0]].__name__} in REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES']"
        )
    else:
        return []
    return [
        Error(
            f"TOTP_LOGIN_CREDENTIAL = 'authtoken' {problem}: the tokens of the login are "
            "drf-totp's own, and only that class reads them.",
            hint=f"List {_OUR_TOKENS!r} first among the token classes.",
            id="drf_totp.E010",
        )
    ]


@register(Tags.security)
def check_num_proxies(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    if api_settings.NUM_PROXIES is not None:
        return []
    return [
        Warning(
            "REST_FRAMEWORK['NUM_PROXIES'] is not set. drf-totp's per-IP throttles use "
            "REMOTE_ADDR: behind a proxy, every client shares the proxy's budget. DRF's own "
            "throttles take the client IP from X-Forwarded-For as sent, which a client chooses.",
            hint="Set NUM_PROXIES to the number of proxies in front of the app (0 for none).",
            id="drf_totp.W005",
        )
    ]


@register(Tags.security)
def check_admin_site(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """The default admin site lets a user with 2FA in with the password alone, unless it is an
    ``OTPAdminSite``."""
    from django.apps import apps

    if not apps.is_installed("django.contrib.admin"):
        return []
    from django.contrib import admin

    from .admin_site import OTPAdminSite

    if isinstance(admin.site, OTPAdminSite):
        return []
    return [
        Warning(
            "The Django admin (admin.site) logs users in with the password alone, 2FA or not: "
            "the password of a staff user with 2FA opens it.",
            hint='Put "drf_totp.apps.OTPAdminConfig" in INSTALLED_APPS in place of '
            '"django.contrib.admin", or derive your AdminSite from '
            "drf_totp.admin_site.OTPAdminSite.",
            id="drf_totp.W006",
        )
    ]
