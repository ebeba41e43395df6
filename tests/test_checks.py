"""System checks: ``manage.py check`` stops on unusable TOTP settings and is silent by default."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings


def drf_totp_messages() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks() if (m.id or "").startswith("drf_totp.")]


def test_default_settings_raise_no_drf_totp_message():
    assert drf_totp_messages() == []


def test_default_settings_pass_manage_py_check():
    call_command("check")


@pytest.mark.parametrize(
    "keys",
    [
        ["not-a-fernet-key"],
        ["drf-totp-tests-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz"],
        [Fernet.generate_key().decode()[:-2]],
        [Fernet.generate_key().decode(), 12345],
    ],
    ids=["word", "a-secret-key", "truncated", "second-not-a-string"],
)
def test_unusable_encryption_key_is_error_e001_naming_the_entry(keys):
    with override_settings(TOTP_ENCRYPTION_KEYS=keys):
        [message] = drf_totp_messages()

    bad = len(keys) - 1
    assert message.id == "drf_totp.E001"
    assert message.level == checks.ERROR
    assert f"TOTP_ENCRYPTION_KEYS[{bad}]" in message.msg
    assert "Fernet" in message.msg
    assert "generate_key" in message.hint


def test_encryption_keys_given_as_one_string_is_error_e001():
    with override_settings(TOTP_ENCRYPTION_KEYS=Fernet.generate_key().decode()):
        [message] = drf_totp_messages()

    assert message.id == "drf_totp.E001"
    assert "list" in message.msg


@override_settings(TOTP_ENCRYPTION_KEYS=["not-a-fernet-key"])
def test_manage_py_check_fails_on_an_unusable_encryption_key():
    with pytest.raises(SystemCheckError, match=r"drf_totp\.E001"):
        call_command("check")


@override_settings(TOTP_ENCRYPTION_KEYS=[Fernet.generate_key().decode(), Fernet.generate_key()])
def test_usable_encryption_keys_as_str_or_bytes_pass():
    assert drf_totp_messages() == []


@pytest.mark.parametrize("window", [2, -1, True, 1.0])
def test_valid_window_other_than_0_or_1_is_error_e002(window):
    with override_settings(TOTP_VALID_WINDOW=window):
        ids = [m.id for m in drf_totp_messages()]

    assert ids == ["drf_totp.E002"]


@override_settings(TOTP_VALID_WINDOW=2)
def test_manage_py_check_fails_on_a_wide_valid_window():
    with pytest.raises(SystemCheckError, match=r"drf_totp\.E002"):
        call_command("check")


@pytest.mark.parametrize("window", [0, 1])
def test_valid_window_0_or_1_passes(window):
    with override_settings(TOTP_VALID_WINDOW=window):
        assert drf_totp_messages() == []


@pytest.mark.parametrize(
    "setting,value",
    [
        ("TOTP_DIGITS", 7),
        ("TOTP_ALGORITHM", "MD5"),
        ("TOTP_PERIOD", 121),
        ("TOTP_ISSUER_NAME", "ACME:Corp"),
        ("TOTP_FREE_FAILURES", -1),
        ("TOTP_MAX_FAILURES", 0),
        ("TOTP_TICKET_MAX_AGE", "300"),
        ("TOTP_RECOVERY_CODES_COUNT", 0),
        ("TOTP_THROTTLE_FAIL_CLOSED", "no"),
        ("TOTP_LOGIN_TOKENS_PER_USER", 0),
        ("TOTP_LOGIN_TOKENS_PER_USER", None),
    ],
)
def test_unusable_code_settings_are_errors(setting, value):
    with override_settings(**{setting: value}):
        messages = drf_totp_messages()

    assert messages and all(m.level == checks.ERROR for m in messages)
    assert any(setting in m.msg for m in messages)


@pytest.mark.parametrize(
    "value",
    ["no.such.module.Issuer", "os.path", "rest_framework.views.APIView"],
)
def test_unusable_login_credential_is_error_e008(value):
    with override_settings(TOTP_LOGIN_CREDENTIAL=value):
        [message] = drf_totp_messages()

    assert message.id == "drf_totp.E008"
    assert value in message.msg


def test_knox_credential_without_knox_installed_is_error_e008(settings):
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "knox"]
    settings.TOTP_LOGIN_CREDENTIAL = "knox"

    [message] = drf_totp_messages()

    assert message.id == "drf_totp.E008"
    assert "'knox'" in message.msg


OURS = "drf_totp.authentication.TokenAuthentication"
DRFS = "rest_framework.authentication.TokenAuthentication"
KNOX = "knox.auth.TokenAuthentication"
SESSION = "rest_framework.authentication.SessionAuthentication"


@pytest.mark.parametrize(
    "classes",
    [[SESSION, DRFS], [DRFS, OURS], [SESSION, DRFS, OURS], [KNOX, OURS], []],
    ids=["missing", "after DRF's", "after DRF's, session first", "after knox's", "none"],
)
def test_authtoken_without_drf_totps_class_before_drfs_is_error_e010(settings, classes):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": classes}

    [message] = drf_totp_messages()

    assert message.id == "drf_totp.E010"
    assert OURS in message.msg


@pytest.mark.parametrize(
    "classes", [[OURS], [SESSION, OURS, DRFS], [OURS, SESSION, DRFS], [OURS, KNOX, DRFS]]
)
def test_authtoken_with_drf_totps_class_first_among_token_classes_passes(settings, classes):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": classes}

    assert drf_totp_messages() == []


def test_other_credentials_do_not_need_drf_totps_token_class(settings):
    settings.TOTP_LOGIN_CREDENTIAL = "knox"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": [DRFS]}

    assert drf_totp_messages() == []


def test_authtoken_no_longer_needs_drf_authtoken_installed(settings):
    settings.INSTALLED_APPS = [
        a for a in settings.INSTALLED_APPS if a != "rest_framework.authtoken"
    ]
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": [OURS]}

    assert drf_totp_messages() == []


@pytest.mark.parametrize("value", ["session", "authtoken", "knox", "simplejwt"])
def test_builtin_login_credentials_pass_when_installed(value):
    with override_settings(TOTP_LOGIN_CREDENTIAL=value):
        assert drf_totp_messages() == []


def test_a_default_admin_site_that_opens_with_the_password_alone_is_warning_w006(monkeypatch):
    from django.contrib import admin

    monkeypatch.setattr(admin, "site", admin.AdminSite())

    assert [m.id for m in drf_totp_messages()] == ["drf_totp.W006"]


def test_drf_totps_admin_site_raises_no_w006():
    from django.contrib import admin

    from drf_totp.admin_site import OTPAdminSite

    assert isinstance(admin.site, OTPAdminSite)  # tests/settings.py: OTPAdminConfig
    assert "drf_totp.W006" not in [m.id for m in drf_totp_messages()]


def test_without_the_admin_there_is_no_w006():
    installed = [app for app in settings.INSTALLED_APPS if app != "drf_totp.apps.OTPAdminConfig"]
    with override_settings(INSTALLED_APPS=installed):
        assert "drf_totp.W006" not in [m.id for m in drf_totp_messages()]
