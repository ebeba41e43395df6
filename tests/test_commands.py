"""Issue #6: the management commands totp_status, totp_reset and totp_unlock (totp_import is in
tests/importers/)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from drf_totp import recovery
from drf_totp.models import RecoveryCode, TOTPDevice

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("command", ["totp_status", "totp_reset", "totp_unlock"])
def test_unknown_user_is_a_command_error(command, user):
    with pytest.raises(CommandError, match="No user with username 'nobody'"):
        run(command, "nobody")


@pytest.mark.parametrize("command", ["totp_status", "totp_reset", "totp_unlock"])
def test_user_is_looked_up_by_the_username_field_only(command, user):
    with pytest.raises(CommandError, match="No user with username 'alice@example.com'"):
        run(command, "alice@example.com")


# --- totp_status -----------------------------------------------------------------------------


def test_status_of_a_user_without_2fa(user):
    assert run("totp_status", "alice").splitlines() == ["User: alice", "2FA: not enabled"]


def test_status_of_a_pending_enrollment(user, make_device):
    make_device(user, confirmed=False)

    assert run("totp_status", "alice").splitlines()[1] == (
        "2FA: not enabled (enrollment started, not confirmed)"
    )


def test_status_of_an_enabled_user(user, make_device, settings):
    settings.TIME_ZONE = "UTC"
    at = timezone.now().replace(microsecond=0)
    device = make_device(user, created_at=at, last_used_at=at + timedelta(minutes=1))
    recovery.issue(user, at)
    RecoveryCode.objects.filter(pk=RecoveryCode.objects.first().pk).update(used_at=at)

    output = run("totp_status", "alice")

    assert output.splitlines() == [
        "User: alice",
        "2FA: enabled",
        f"Confirmed at: {at.isoformat()}",
        f"Last used at: {(at + timedelta(minutes=1)).isoformat()}",
        "Locked: no",
        "Recovery codes remaining: 9",
    ]
    assert device.secret not in output


def test_status_shows_a_lock_and_a_lockout(user, make_device, settings):
    settings.TIME_ZONE = "UTC"
    until = (timezone.now() + timedelta(minutes=5)).replace(microsecond=0)
    device = make_device(user, locked_until=until, failure_count=6)

    assert f"Locked: until {until.isoformat()}" in run("totp_status", "alice")

    TOTPDevice.objects.filter(pk=device.pk).update(failure_count=100, locked_until=None)
    assert "Locked: locked out" in run("totp_status", "alice")


# --- totp_reset ------------------------------------------------------------------------------


def test_reset_deletes_the_device_and_recovery_codes(
    user, other_user, make_device, received, django_capture_on_commit_callbacks
):
    make_device(user)
    make_device(other_user)
    recovery.issue(user, timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        output = run("totp_reset", "alice")

    assert output == "2FA reset for alice: device and recovery codes deleted.\n"
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()
    assert TOTPDevice.objects.filter(user=other_user).exists()
    assert received == [("totp_disabled", user, None)]


def test_reset_of_a_user_without_a_device_says_so(
    user, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        output = run("totp_reset", "alice")

    assert output == "alice has no TOTP device; nothing to reset.\n"
    assert received == []


# --- totp_unlock -----------------------------------------------------------------------------


def test_unlock_clears_failures_and_lock(
    user, make_device, received, django_capture_on_commit_callbacks
):
    device = make_device(user, failure_count=9, locked_until=timezone.now() + timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        output = run("totp_unlock", "alice")

    assert output == "Unlocked alice: failures and lock cleared.\n"
    device.refresh_from_db()
    assert (device.failure_count, device.locked_until) == (0, None)
    assert received == [("totp_unlocked", user, None)]


def test_unlock_of_a_user_who_is_not_locked_says_so(user, make_device, received):
    make_device(user)

    assert run("totp_unlock", "alice") == "alice is not locked; nothing to do.\n"
    assert received == []


# --- totp_rotate_keys ------------------------------------------------------------------------


def test_rotate_keys_re_encrypts_every_secret_under_the_newest_key(
    user, other_user, make_device, settings
):
    from cryptography.fernet import Fernet

    old = Fernet.generate_key().decode()
    settings.TOTP_ENCRYPTION_KEYS = [old]
    secrets_before = [make_device(user).secret, make_device(other_user).secret]
    new = Fernet.generate_key().decode()
    settings.TOTP_ENCRYPTION_KEYS = [new, old]

    output = run("totp_rotate_keys")

    assert "Re-encrypted 2 secret(s)" in output
    settings.TOTP_ENCRYPTION_KEYS = [new]  # the old key is gone: every secret must still read
    assert sorted(TOTPDevice.objects.values_list("secret", flat=True)) == sorted(secrets_before)
