"""Issue #14, item 2: 2FA that a site can require (``TOTP_REQUIRED``, ``TOTP_REQUIRED_GRACE_DAYS``).

A user whom the setting covers and who has no confirmed device is denied by ``IsOTPVerified``
with ``otp_enrollment_required`` (past any grace period), keeps the enrollment endpoints, is told
so by ``login/``, and is refused by the admin site. Users the setting does not cover, and users
with 2FA, see no change.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import checks
from django.test import Client
from django.utils import timezone, translation
from rest_framework.test import APIClient

from drf_totp import policy
from tests.code_checks import (
    GENERATE,
    LOGIN,
    LOGIN_VERIFY,
    STATUS,
    VERIFY,
    current_code,
    post,
)
from tests.conftest import authenticator_code
from tests.test_translations import locale_middleware  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]

PROTECTED = "/protected/"
STAFF_ONLY = "tests.test_required.staff_only"


def staff_only(user) -> bool:
    return user.is_staff


def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def assert_enrollment_required(response) -> None:
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "otp_enrollment_required"
    assert "set it up" in response.json()["detail"]


# --- The policy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "staff", "expected"),
    [
        (False, True, False),
        (True, False, True),
        (STAFF_ONLY, True, True),
        (STAFF_ONLY, False, False),
    ],
)
def test_the_setting_says_who_must_have_2fa(settings, user, setting, staff, expected):
    settings.TOTP_REQUIRED = setting
    user.is_staff = staff

    assert policy.required(user) is expected
    assert policy.enforced(user, timezone.now()) is expected


def test_nobody_is_required_by_default(user):
    assert policy.required(user) is False


# --- IsOTPVerified --------------------------------------------------------------------------


def test_a_required_user_without_a_device_is_denied_with_enrollment_required(settings, user):
    settings.TOTP_REQUIRED = True

    assert_enrollment_required(session_client(user).get(PROTECTED))


@pytest.mark.usefixtures("locale_middleware")
def test_the_denial_speaks_the_language_of_the_request_with_the_same_code(settings, user):
    settings.TOTP_REQUIRED = True

    with translation.override("en"):  # the language the middleware activates goes afterwards
        response = session_client(user).get(PROTECTED, HTTP_ACCEPT_LANGUAGE="de")

    assert response.status_code == 403
    assert response.json() == {
        "detail": "Die Zwei-Faktor-Authentifizierung ist erforderlich: Richten Sie sie ein, um "
        "fortzufahren.",
        "code": "otp_enrollment_required",
    }


def test_a_pending_device_is_not_enough(settings, user, make_device):
    settings.TOTP_REQUIRED = True
    make_device(user, confirmed=False)

    assert_enrollment_required(session_client(user).get(PROTECTED))


def test_a_user_the_callable_does_not_cover_is_allowed_without_a_device(settings, user):
    settings.TOTP_REQUIRED = STAFF_ONLY

    response = session_client(user).get(PROTECTED)

    assert response.status_code == 200
    user.is_staff = True
    user.save()
    assert_enrollment_required(session_client(user).get(PROTECTED))


def test_nobody_required_leaves_a_user_without_a_device_allowed(settings, user):
    settings.TOTP_REQUIRED = False

    assert session_client(user).get(PROTECTED).status_code == 200


def test_a_required_user_with_2fa_needs_the_second_factor_not_enrollment(
    settings, user, password, make_device
):
    settings.TOTP_REQUIRED = True
    device = make_device(user)
    client = APIClient()

    assert session_client(user).get(PROTECTED).json()["code"] == "otp_required"
    ticket = post(client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]
    post(client, LOGIN_VERIFY, {"ticket": ticket, "token": current_code(device)})
    assert client.get(PROTECTED).status_code == 200


def test_enrolling_lifts_the_denial(settings, user):
    """The enrollment endpoints stay open, even with IsOTPVerified as the project's default
    permission; the session that confirms the device passed the second factor."""
    settings.TOTP_REQUIRED = True
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_PERMISSION_CLASSES": ["drf_totp.permissions.IsOTPVerified"],
    }
    client = session_client(user)
    assert_enrollment_required(client.get(PROTECTED))

    assert client.get(STATUS).json()["enabled"] is False
    url = post(client, GENERATE).json()["otpauth_url"]
    response = post(client, VERIFY, {"token": authenticator_code(url)})

    assert response.status_code == 200, response.content
    assert client.get(PROTECTED).status_code == 200


# --- login/ -----------------------------------------------------------------------------------


def log_in(password: str):
    return post(APIClient(), LOGIN, {"username": "alice", "password": password})


def test_login_tells_a_required_user_without_2fa_to_enroll(settings, user, password):
    settings.TOTP_REQUIRED = True

    response = log_in(password)

    assert response.status_code == 200
    assert response.json() == {"detail": "Logged in.", "mfa_enrollment_required": True}


def test_login_of_a_user_not_required_is_unchanged(settings, user, password):
    settings.TOTP_REQUIRED = STAFF_ONLY

    assert log_in(password).json() == {"detail": "Logged in."}


def test_login_of_a_required_user_with_2fa_is_unchanged(settings, user, password, make_device):
    settings.TOTP_REQUIRED = True
    make_device(user)

    body = log_in(password).json()

    assert set(body) == {"mfa_required", "ticket", "expires_in"}


def test_login_with_tokens_carries_the_flag_next_to_the_token(settings, user, password):
    settings.TOTP_REQUIRED = True
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"

    body = log_in(password).json()

    assert set(body) == {"token", "mfa_enrollment_required"}
    assert body["mfa_enrollment_required"] is True


# --- The grace period ---------------------------------------------------------------------------


def test_the_grace_period_counts_from_date_joined(settings, user, clock):
    settings.TOTP_REQUIRED = True
    settings.TOTP_REQUIRED_GRACE_DAYS = 7
    user.date_joined = timezone.now()
    user.save()
    client = session_client(user)

    assert client.get(PROTECTED).status_code == 200
    clock.shift(timedelta(days=7) - timedelta(seconds=1))
    assert client.get(PROTECTED).status_code == 200
    clock.shift(timedelta(seconds=1))
    assert_enrollment_required(client.get(PROTECTED))


def test_login_tells_the_user_to_enroll_during_the_grace_period(settings, user, password):
    settings.TOTP_REQUIRED = True
    settings.TOTP_REQUIRED_GRACE_DAYS = 7
    user.date_joined = timezone.now()
    user.save()

    assert log_in(password).json()["mfa_enrollment_required"] is True


def test_a_user_model_without_date_joined_gets_no_grace(settings, user):
    settings.TOTP_REQUIRED = True
    settings.TOTP_REQUIRED_GRACE_DAYS = 7

    class NoDateJoined:
        pass

    assert policy.grace_ends(NoDateJoined()) is None
    assert policy.enforced(NoDateJoined(), timezone.now()) is True


# --- The admin ----------------------------------------------------------------------------------


@pytest.fixture
def root(django_user_model, password):
    return django_user_model.objects.create_superuser(
        username="root", email="root@example.com", password=password
    )


def admin_log_in(client: Client, password: str):
    return client.post("/admin/login/", {"username": "root", "password": password})


def test_the_admin_refuses_a_required_staff_user_without_2fa(settings, client, root, password):
    settings.TOTP_REQUIRED = STAFF_ONLY

    response = admin_log_in(client, password)

    assert response.status_code == 200
    errors = response.context["form"].errors.as_data()
    assert [e.code for e in errors["__all__"]] == ["otp_enrollment_required"]
    assert "set it up to continue" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_the_admin_closes_to_a_session_from_before_the_requirement(
    settings, client, root, password
):
    assert admin_log_in(client, password).status_code == 302
    assert client.get("/admin/").status_code == 200

    settings.TOTP_REQUIRED = True

    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_admin_lets_a_staff_user_in_during_the_grace_period(settings, client, root, password):
    settings.TOTP_REQUIRED = True
    settings.TOTP_REQUIRED_GRACE_DAYS = 1
    root.date_joined = timezone.now()
    root.save()

    assert admin_log_in(client, password).status_code == 302
    assert client.get("/admin/").status_code == 200


# --- The system check ---------------------------------------------------------------------------


def drf_totp_messages() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks() if (m.id or "").startswith("drf_totp.")]


@pytest.mark.parametrize("value", [True, False, STAFF_ONLY])
def test_usable_values_pass_the_check(settings, value):
    settings.TOTP_REQUIRED = value

    assert drf_totp_messages() == []


@pytest.mark.parametrize(
    "value",
    [1, None, "staff", "tests.test_required.no_such_function", "tests.test_required.PROTECTED"],
    ids=["int", "none", "not-a-path", "missing", "not-callable"],
)
def test_unusable_values_are_error_e012(settings, value):
    settings.TOTP_REQUIRED = value

    [message] = drf_totp_messages()

    assert message.id == "drf_totp.E012"
    assert repr(value) in message.msg


@pytest.mark.parametrize("days", [-1, 1.5, "7", True])
def test_an_unusable_grace_period_is_error_e007(settings, days):
    settings.TOTP_REQUIRED_GRACE_DAYS = days

    [message] = drf_totp_messages()

    assert message.id == "drf_totp.E007"
    assert "TOTP_REQUIRED_GRACE_DAYS" in message.msg


# --- OpenAPI --------------------------------------------------------------------------------


def test_the_login_response_schema_has_the_optional_flag():
    from tests.test_openapi import generated_schema

    login_response = generated_schema()["components"]["schemas"]["LoginResponse"]

    assert login_response["properties"]["mfa_enrollment_required"]["type"] == "boolean"
    assert "mfa_enrollment_required" not in login_response.get("required", [])
