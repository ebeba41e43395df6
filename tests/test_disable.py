"""POST /auth/otp/disable/: turning 2FA off with a TOTP or recovery code (and the password, when
``TOTP_DISABLE_REQUIRES_PASSWORD`` is on).

It deletes the device, the recovery codes and the token marks; afterwards no earlier ticket
completes a login, and after 2FA is enabled again no earlier session mark counts.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from drf_totp import authentication, recovery, statements
from drf_totp.models import LoginToken, RecoveryCode, TOTPDevice, VerifiedToken
from tests.code_checks import (
    DISABLE,
    GENERATE,
    LOGIN,
    LOGIN_VERIFY,
    STATUS,
    VALIDATE,
    VERIFY,
    assert_refused,
    post,
    wrong,
)

PROTECTED = "/protected/"

pytestmark = pytest.mark.usefixtures("clock")


def assert_disabled(response, user) -> None:
    assert response.status_code == 200, response.content
    assert response.json()["enabled"] is False
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()
    assert not VerifiedToken.objects.filter(user=user).exists()


def assert_still_enabled(user, codes: int = 10) -> None:
    assert TOTPDevice.objects.filter(user=user, is_confirmed=True).exists()
    assert recovery.unused(user.pk).count() == codes


@pytest.fixture
def token_mark(user, totp_device):
    """A marked login token of alice, as /validate/ or /login/verify/ leaves one."""
    key = authentication.new_key()
    digest = authentication.key_digest(key)
    LoginToken.objects.create(user=user, digest=digest, created_at=timezone.now())
    statements.mark(digest, totp_device, timezone.now())
    return key


# --- with a code ---------------------------------------------------------------------------------


def test_a_totp_code_disables_2fa_and_deletes_device_codes_and_marks(
    auth_client, user, totp_device, recovery_codes, token_mark, authenticator
):
    response = post(auth_client, DISABLE, {"token": authenticator(totp_device)})

    assert_disabled(response, user)
    status = auth_client.get(STATUS).json()
    assert (status["enabled"], status["pending"], status["recovery_codes_remaining"]) == (
        False,
        False,
        0,
    )


def test_a_recovery_code_disables_2fa(auth_client, user, recovery_codes, token_mark):
    response = post(auth_client, DISABLE, {"token": recovery_codes[3].lower().replace("-", " ")})

    assert_disabled(response, user)


def test_a_wrong_code_disables_nothing_and_counts(
    auth_client, user, totp_device, recovery_codes, authenticator
):
    response = post(auth_client, DISABLE, {"token": wrong(authenticator(totp_device))})

    assert_refused(response, 400, "invalid_token", "token")
    assert_still_enabled(user)
    totp_device.refresh_from_db()
    assert totp_device.failure_count == 1


def test_a_used_recovery_code_disables_nothing(auth_client, user, recovery_codes):
    assert post(auth_client, VALIDATE, {"token": recovery_codes[0]}).status_code == 200

    assert_refused(post(auth_client, DISABLE, {"token": recovery_codes[0]}), 400, "token_reused")
    assert_still_enabled(user, codes=9)


def test_a_replayed_totp_code_disables_nothing(
    auth_client, user, totp_device, recovery_codes, authenticator
):
    code = authenticator(totp_device)
    assert post(auth_client, VALIDATE, {"token": code}).status_code == 200

    assert_refused(post(auth_client, DISABLE, {"token": code}), 400, "token_reused")
    assert_still_enabled(user)


def test_disable_is_refused_while_locked(
    auth_client, user, totp_device, recovery_codes, authenticator
):
    TOTPDevice.objects.filter(pk=totp_device.pk).update(
        failure_count=5, locked_until=timezone.now() + timedelta(seconds=30)
    )

    assert_refused(post(auth_client, DISABLE, {"token": authenticator(totp_device)}), 429, "locked")
    assert_refused(post(auth_client, DISABLE, {"token": recovery_codes[0]}), 429, "locked")
    assert_still_enabled(user)


def test_disable_without_2fa_is_not_enabled(auth_client, user):
    assert_refused(post(auth_client, DISABLE, {"token": "123456"}), 409, "not_enabled")


def test_disable_leaves_other_users_alone(
    auth_client, user, other_user, totp_device, make_device, authenticator
):
    bobs_device = make_device(other_user)
    recovery.issue(other_user, timezone.now())
    bobs_digest = authentication.key_digest(authentication.new_key())
    LoginToken.objects.create(user=other_user, digest=bobs_digest, created_at=timezone.now())
    statements.mark(bobs_digest, bobs_device, timezone.now())

    assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200

    assert TOTPDevice.objects.filter(pk=bobs_device.pk).exists()
    assert recovery.unused(other_user.pk).count() == 10
    assert VerifiedToken.objects.filter(user=other_user).count() == 1


# --- the password setting -------------------------------------------------------------------------


@pytest.fixture
def password_required(settings):
    settings.TOTP_DISABLE_REQUIRES_PASSWORD = True


@pytest.mark.usefixtures("password_required")
def test_with_the_setting_the_password_is_required(auth_client, user, totp_device, authenticator):
    response = post(auth_client, DISABLE, {"token": authenticator(totp_device)})

    assert_refused(response, 400, "required", "password")
    assert_still_enabled(user, codes=0)
    totp_device.refresh_from_db()
    assert totp_device.use_count == 0


@pytest.mark.usefixtures("password_required")
def test_with_the_setting_a_wrong_password_counts_as_a_wrong_code_and_spends_no_code(
    auth_client, user, totp_device, recovery_codes, authenticator
):
    code = authenticator(totp_device)

    response = post(auth_client, DISABLE, {"token": code, "password": "not the password"})

    assert_refused(response, 400, "invalid_code_or_password", "non_field_errors")
    assert_still_enabled(user)
    totp_device.refresh_from_db()
    assert (totp_device.use_count, totp_device.failure_count) == (0, 1)
    # The code was not spent on the refused request.
    assert post(auth_client, VALIDATE, {"token": code}).status_code == 200


@pytest.mark.usefixtures("password_required")
def test_with_the_setting_the_password_and_a_totp_code_disable(
    auth_client, user, password, totp_device, recovery_codes, authenticator
):
    response = post(
        auth_client, DISABLE, {"token": authenticator(totp_device), "password": password}
    )

    assert_disabled(response, user)


@pytest.mark.usefixtures("password_required")
def test_with_the_setting_the_password_and_a_recovery_code_disable(
    auth_client, user, password, recovery_codes
):
    response = post(auth_client, DISABLE, {"token": recovery_codes[0], "password": password})

    assert_disabled(response, user)


@pytest.mark.usefixtures("password_required")
def test_with_the_setting_the_right_password_and_a_wrong_code_disable_nothing(
    auth_client, user, password, totp_device, recovery_codes, authenticator
):
    response = post(
        auth_client, DISABLE, {"token": wrong(authenticator(totp_device)), "password": password}
    )

    assert_refused(response, 400, "invalid_code_or_password", "non_field_errors")
    assert_still_enabled(user)


def test_without_the_setting_no_password_is_needed(auth_client, user, totp_device, authenticator):
    assert_disabled(post(auth_client, DISABLE, {"token": authenticator(totp_device)}), user)


# --- afterwards ------------------------------------------------------------------------------------------


def test_a_ticket_from_before_disable_completes_no_login(
    api_client, auth_client, password, totp_device, recovery_codes, authenticator, clock
):
    ticket = post(api_client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]
    assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200
    clock.shift(30)

    response = post(api_client, LOGIN_VERIFY, {"ticket": ticket, "token": recovery_codes[0]})

    assert_refused(response, 400, "invalid_ticket", "ticket")
    assert "sessionid" not in response.cookies


def test_after_disable_the_password_alone_logs_in(
    api_client, auth_client, password, totp_device, authenticator
):
    assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200

    response = post(api_client, LOGIN, {"username": "alice", "password": password})

    assert response.status_code == 200
    assert "ticket" not in response.json()


def test_an_old_session_mark_does_not_count_after_enabling_again(
    session_client, auth_client, user, totp_device, authenticator, clock
):
    assert post(session_client, VALIDATE, {"token": authenticator(totp_device)}).status_code == 200
    assert session_client.get(PROTECTED).status_code == 200
    clock.shift(30)
    assert post(session_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200

    # Enabled again from another client, so this session gets no new mark.
    url = post(auth_client, GENERATE, {}).json()["otpauth_url"]
    assert post(auth_client, VERIFY, {"token": authenticator(url)}).status_code == 200

    response = session_client.get(PROTECTED)
    assert response.status_code == 403
    assert response.json()["code"] == "otp_required"


def test_an_old_token_mark_is_gone_after_disable(
    auth_client, user, totp_device, token_mark, authenticator
):
    assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200

    assert not VerifiedToken.objects.filter(digest=authentication.key_digest(token_mark)).exists()


def test_old_recovery_codes_do_not_work_after_enabling_again(
    auth_client, user, totp_device, recovery_codes, authenticator, clock
):
    assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200
    url = post(auth_client, GENERATE, {}).json()["otpauth_url"]
    assert post(auth_client, VERIFY, {"token": authenticator(url)}).status_code == 200

    response = post(auth_client, VALIDATE, {"token": recovery_codes[1]})

    assert_refused(response, 400, "invalid_token")
