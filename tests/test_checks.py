"""System checks: ``manage.py check`` stops on unusable TOTP settings and is silent by default."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
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
