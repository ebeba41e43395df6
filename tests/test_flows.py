"""The three flows end to end over HTTP, as a client written against the API would run them,
and the endpoints of the last two (POST /auth/otp/validate/, POST /auth/otp/disable/) in detail.

The flows run under both session authentication (with CSRF) and DRF token authentication. Time is
frozen and moved one step at a time, so every code sent is a fresh step's.
"""

from __future__ import annotations

import pyotp
import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from drf_totp.models import TOTPDevice
from tests.code_checks import DISABLE, GENERATE, STATUS, VALIDATE, VERIFY, post, wrong

# Where a session records that its user passed the second factor (part of the API).
SESSION_KEY = "drf_totp_verified"


@pytest.fixture(params=["session_client", "token_client"])
def logged_in_client(request):
    """alice's client, logged in by session (with CSRF) or by DRF token."""
    return request.getfixturevalue(request.param)


def app_code(otpauth_url: str) -> str:
    """What an authenticator app that scanned ``otpauth_url`` shows now."""
    return pyotp.parse_uri(otpauth_url).at(timezone.now())


def enroll(client) -> str:
    """Generate and verify; return the otpauth URL the app scanned."""
    url = post(client, GENERATE).json()["otpauth_url"]
    assert post(client, VERIFY, {"token": app_code(url)}).status_code == 200
    return url


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert body["detail"]


# --- the flows ---------------------------------------------------------------------------------


def test_sign_up_flow(logged_in_client, user, clock):
    client = logged_in_client
    assert client.get(STATUS).json()["enabled"] is False

    generated = post(client, GENERATE)
    assert generated.status_code == 200, generated.content
    assert client.get(STATUS).json()["pending"] is True
    code = pyotp.parse_uri(generated.json()["otpauth_url"]).at(timezone.now())
    verified = post(client, VERIFY, {"token": code})

    assert verified.status_code == 200, verified.content
    assert verified.json()["enabled"] is True
    status = client.get(STATUS).json()
    assert (status["enabled"], status["pending"]) == (True, False)
    assert parse_datetime(status["confirmed_at"]) == timezone.now()


def test_login_flow(logged_in_client, user, clock):
    client = logged_in_client
    url = enroll(client)
    clock.shift(30)

    assert client.get(STATUS).json()["enabled"] is True
    validated = post(client, VALIDATE, {"token": app_code(url)})

    assert validated.status_code == 200, validated.content
    assert parse_datetime(client.get(STATUS).json()["last_used_at"]) == timezone.now()


def test_disable_flow(logged_in_client, user, clock):
    client = logged_in_client
    url = enroll(client)
    clock.shift(30)

    disabled = post(client, DISABLE, {"token": app_code(url)})

    assert disabled.status_code == 200, disabled.content
    assert disabled.json()["enabled"] is False
    assert not TOTPDevice.objects.filter(user=user).exists()
    status = client.get(STATUS).json()
    assert (status["enabled"], status["pending"]) == (False, False)
    # Enrolling again starts from scratch.
    assert post(client, GENERATE).status_code == 200


# --- validate ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("clock")
def test_validate_accepts_the_current_code_and_records_its_step(
    auth_client, user, make_device, authenticator
):
    device = make_device(user)

    response = post(auth_client, VALIDATE, {"token": authenticator(device)})

    assert response.status_code == 200, response.content
    assert response.json()["enabled"] is True
    device.refresh_from_db()
    assert device.last_used_step == int(timezone.now().timestamp()) // 30
    assert device.last_used_at == timezone.now()


@pytest.mark.usefixtures("clock")
def test_validate_refuses_a_wrong_code(auth_client, user, make_device, authenticator):
    device = make_device(user)

    response = post(auth_client, VALIDATE, {"token": wrong(authenticator(device))})

    assert_error(response, 400, "invalid_token")
    device.refresh_from_db()
    assert (device.last_used_step, device.failure_count) == (0, 1)


def test_validate_without_a_device_is_not_enabled(auth_client):
    assert_error(post(auth_client, VALIDATE, {"token": "123456"}), 409, "not_enabled")


@pytest.mark.usefixtures("clock")
def test_validate_with_only_a_pending_device_is_not_enabled(
    auth_client, user, make_device, authenticator
):
    device = make_device(user, confirmed=False)

    response = post(auth_client, VALIDATE, {"token": authenticator(device)})

    assert_error(response, 409, "not_enabled")
    device.refresh_from_db()
    assert (device.is_confirmed, device.last_used_step) == (False, 0)


@pytest.mark.usefixtures("clock")
def test_validate_under_session_auth_marks_the_session_under_a_new_key(
    session_client, user, make_device, authenticator
):
    device = make_device(user)
    old_key = session_client.cookies[settings.SESSION_COOKIE_NAME].value
    assert SESSION_KEY not in session_client.session

    response = post(session_client, VALIDATE, {"token": authenticator(device)})

    assert response.status_code == 200, response.content
    new_key = session_client.cookies[settings.SESSION_COOKIE_NAME].value
    assert new_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    assert session_client.session[SESSION_KEY] == {
        "device": device.pk,
        "at": int(timezone.now().timestamp()),
    }
    # Still the same login, only under a fresh key.
    assert session_client.get(STATUS).json()["enabled"] is True


@pytest.mark.usefixtures("clock")
def test_failed_validate_leaves_the_session_unmarked_and_its_key_unchanged(
    session_client, user, make_device, authenticator
):
    device = make_device(user)
    old_key = session_client.cookies[settings.SESSION_COOKIE_NAME].value

    response = post(session_client, VALIDATE, {"token": wrong(authenticator(device))})

    assert response.status_code == 400
    assert session_client.cookies[settings.SESSION_COOKIE_NAME].value == old_key
    assert SESSION_KEY not in session_client.session


@pytest.mark.usefixtures("clock")
def test_validate_under_token_auth_creates_no_session(
    token_client, user, make_device, authenticator
):
    device = make_device(user)
    sessions = Session.objects.count()

    response = post(token_client, VALIDATE, {"token": authenticator(device)})

    assert response.status_code == 200, response.content
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert Session.objects.count() == sessions


# --- disable -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("clock")
def test_disable_with_the_current_code_deletes_the_device(
    auth_client, user, make_device, authenticator
):
    device = make_device(user)

    response = post(auth_client, DISABLE, {"token": authenticator(device)})

    assert response.status_code == 200, response.content
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()


@pytest.mark.usefixtures("clock")
def test_disable_with_a_wrong_code_keeps_the_device(auth_client, user, make_device, authenticator):
    device = make_device(user)

    response = post(auth_client, DISABLE, {"token": wrong(authenticator(device))})

    assert_error(response, 400, "invalid_token")
    device.refresh_from_db()
    assert device.is_confirmed
    assert device.failure_count == 1


def test_disable_with_the_code_just_used_to_log_in_keeps_the_device(
    auth_client, user, make_device, authenticator, clock
):
    device = make_device(user)
    code = authenticator(device)
    assert post(auth_client, VALIDATE, {"token": code}).status_code == 200

    response = post(auth_client, DISABLE, {"token": code})

    assert_error(response, 400, "token_reused")
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_disable_without_a_device_is_not_enabled(auth_client):
    assert_error(post(auth_client, DISABLE, {"token": "123456"}), 409, "not_enabled")


@pytest.mark.usefixtures("clock")
def test_disable_does_not_delete_a_pending_device(auth_client, user, make_device, authenticator):
    device = make_device(user, confirmed=False)

    response = post(auth_client, DISABLE, {"token": authenticator(device)})

    assert_error(response, 409, "not_enabled")
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
