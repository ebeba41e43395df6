"""``IsOTPVerified`` on an integrator's own views (tests/views.py), for every kind of credential.

It lets through a user without 2FA, and a credential that passed the second factor on the
user's current device: a session marked by /login/verify/ or /validate/, a SimpleJWT token with
the claims, a DRF or knox token with a ``VerifiedToken`` row. It fails closed for everything
else: anonymous requests, unmarked credentials, HTTP Basic, marks of an earlier device.
``IsOTPVerified.with_max_age(seconds)`` also demands that the factor was passed recently.
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from knox.models import get_token_model
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from drf_totp import marks
from drf_totp.models import LoginToken, TOTPDevice, VerifiedToken
from tests.code_checks import (
    DISABLE,
    GENERATE,
    LOGIN,
    LOGIN_VERIFY,
    VALIDATE,
    VERIFY,
    client_with,
    post,
)
from tests.views import RECENT

PROTECTED = "/protected/"
RECENT_URL = "/protected/recent/"
BASIC = "/protected/basic/"
JWT = "/protected/jwt/"
JWT_RECENT = "/protected/jwt/recent/"
KNOX = "/protected/knox/"
KNOX_RECENT = "/protected/knox/recent/"
KNOX_VALIDATE = "/protected/knox/validate/"


pytestmark = pytest.mark.usefixtures("clock")


def assert_allowed(response) -> None:
    assert response.status_code == 200, response.content
    assert response.json() == {"username": "alice"}


def assert_denied(response, code: str = "otp_required") -> None:
    assert response.status_code == 403, response.content
    assert response.json()["code"] == code


def jwt_for(user, device: TOTPDevice | None = None, *, amr=None, at=None) -> str:
    """An access token as SimpleJWT makes it, with the 2FA claims for ``device`` if given.

    It lives an hour, longer than the recent checks look back (SimpleJWT's default is 5 minutes).
    """
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(hours=1))
    if device is not None:
        token["amr"] = amr if amr is not None else ["pwd", "otp"]
        token["auth_time"] = int((at or timezone.now()).timestamp())
        token["otp_device"] = device.pk
    return str(token)


def knox_token(user) -> str:
    return get_token_model().objects.create(user=user)[1]


def reenable(client, authenticator) -> TOTPDevice:
    """Enroll alice again through the API (after a disable); her new device."""
    url = post(client, GENERATE, {}).json()["otpauth_url"]
    assert post(client, VERIFY, {"token": authenticator(url)}).status_code == 200
    return TOTPDevice.objects.get(is_confirmed=True)


# --- anonymous and users without 2FA -------------------------------------------------------------


@pytest.mark.parametrize("url", [PROTECTED, RECENT_URL, BASIC, JWT, KNOX])
def test_an_anonymous_request_is_denied(api_client, url):
    response = api_client.get(url)

    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("url", [PROTECTED, RECENT_URL])
def test_a_session_of_a_user_without_2fa_is_allowed(session_client, user, url):
    assert_allowed(session_client.get(url))


def test_a_token_of_a_user_without_2fa_is_allowed(token_client, user):
    assert_allowed(token_client.get(PROTECTED))


def test_http_basic_of_a_user_without_2fa_is_allowed(user, password):
    basic = base64.b64encode(f"alice:{password}".encode()).decode()

    assert_allowed(client_with(f"Basic {basic}").get(BASIC))


def test_a_jwt_without_claims_of_a_user_without_2fa_is_allowed(user):
    assert_allowed(client_with(f"Bearer {jwt_for(user)}").get(JWT))


def test_a_knox_token_of_a_user_without_2fa_is_allowed(user):
    assert_allowed(client_with(f"Token {knox_token(user)}").get(KNOX))


def test_a_pending_device_does_not_require_the_second_factor(session_client, user, make_device):
    make_device(user, confirmed=False)

    assert_allowed(session_client.get(PROTECTED))


# --- sessions -------------------------------------------------------------------------------------


def test_a_session_that_did_not_pass_the_second_factor_is_denied(session_client, totp_device):
    assert_denied(session_client.get(PROTECTED))


def test_validate_marks_the_session(session_client, totp_device, authenticator):
    assert post(session_client, VALIDATE, {"token": authenticator(totp_device)}).status_code == 200

    assert_allowed(session_client.get(PROTECTED))


def test_validate_answers_a_session_with_no_store_since_its_key_changed(
    session_client, totp_device, authenticator
):
    old_key = session_client.cookies["sessionid"].value

    response = post(session_client, VALIDATE, {"token": authenticator(totp_device)})

    assert response.status_code == 200, response.content
    assert response.cookies["sessionid"].value != old_key
    assert "no-store" in response["Cache-Control"]


def test_a_failed_validate_leaves_the_session_denied(session_client, totp_device, authenticator):
    code = authenticator(totp_device)
    wrong = "".join(str((int(d) + 5) % 10) for d in code)
    assert post(session_client, VALIDATE, {"token": wrong}).status_code == 400

    assert_denied(session_client.get(PROTECTED))


def test_another_users_marked_session_does_not_help(
    session_client, user, other_user, password, totp_device, make_device, authenticator
):
    bob = APIClient()
    bob.force_authenticate(other_user)  # unrelated: bob's device gets used, not alice's
    bobs_device = make_device(other_user)
    assert post(bob, VALIDATE, {"token": authenticator(bobs_device)}).status_code == 200

    assert_denied(session_client.get(PROTECTED))


def test_a_session_mark_for_another_device_id_is_denied(session_client, totp_device):
    session = session_client.session
    session[marks.SESSION_KEY] = {
        "device": totp_device.pk + 1,
        "at": int(timezone.now().timestamp()),
    }
    session.save()

    assert_denied(session_client.get(PROTECTED))


# --- SimpleJWT -------------------------------------------------------------------------------------


def test_a_jwt_without_the_claims_is_denied_for_a_2fa_user(user, totp_device):
    assert_denied(client_with(f"Bearer {jwt_for(user)}").get(JWT))


def test_a_jwt_with_the_claims_is_allowed(user, totp_device):
    assert_allowed(client_with(f"Bearer {jwt_for(user, totp_device)}").get(JWT))


@pytest.mark.parametrize("amr", [["pwd"], [], "otp", ["pwd", "mfa"]])
def test_a_jwt_whose_amr_lacks_otp_is_denied(user, totp_device, amr):
    assert_denied(client_with(f"Bearer {jwt_for(user, totp_device, amr=amr)}").get(JWT))


def test_a_jwt_from_the_password_only_login_is_denied_once_2fa_is_on(
    api_client, user, password, settings, make_device
):
    settings.TOTP_LOGIN_CREDENTIAL = "simplejwt"
    access = post(api_client, LOGIN, {"username": "alice", "password": password}).json()["access"]
    assert_allowed(client_with(f"Bearer {access}").get(JWT))

    make_device(user)

    assert_denied(client_with(f"Bearer {access}").get(JWT))


# --- DRF authtoken and knox -------------------------------------------------------------------------


def test_an_unmarked_authtoken_is_denied_for_a_2fa_user(token_client, totp_device):
    assert_denied(token_client.get(PROTECTED))


def test_an_authtoken_that_passed_validate_is_marked_and_allowed(
    token_client, user, totp_device, authenticator
):
    digest = LoginToken.objects.get(user=user).digest

    assert post(token_client, VALIDATE, {"token": authenticator(totp_device)}).status_code == 200

    mark = VerifiedToken.objects.get(digest=digest)
    assert (mark.device_id, mark.verified_at) == (totp_device.pk, timezone.now())
    assert_allowed(token_client.get(PROTECTED))


def test_an_authtoken_from_login_verify_is_allowed(
    api_client, user, password, totp_device, authenticator, settings
):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"
    ticket = post(api_client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]
    body = post(api_client, LOGIN_VERIFY, {"ticket": ticket, "token": authenticator(totp_device)})

    assert_allowed(client_with(f"Token {body.json()['token']}").get(PROTECTED))


def test_an_unmarked_knox_token_is_denied_for_a_2fa_user(user, totp_device):
    assert_denied(client_with(f"Token {knox_token(user)}").get(KNOX))


def test_a_knox_token_that_passed_validate_is_marked_and_allowed(user, totp_device, authenticator):
    token = knox_token(user)
    knox = client_with(f"Token {token}")

    response = post(knox, KNOX_VALIDATE, {"token": authenticator(totp_device)})

    assert response.status_code == 200, response.content
    instance = get_token_model().objects.get(user=user)
    assert VerifiedToken.objects.filter(digest=instance.digest, device_id=totp_device.pk).exists()
    assert_allowed(knox.get(KNOX))


def test_marking_one_knox_token_leaves_the_users_other_tokens_unmarked(
    user, totp_device, authenticator
):
    marked, other = (
        client_with(f"Token {knox_token(user)}"),
        client_with(f"Token {knox_token(user)}"),
    )

    assert post(marked, KNOX_VALIDATE, {"token": authenticator(totp_device)}).status_code == 200

    assert_allowed(marked.get(KNOX))
    assert_denied(other.get(KNOX))


# --- fail closed ------------------------------------------------------------------------------------


def test_http_basic_is_denied_for_a_2fa_user_even_after_validate(
    user, password, totp_device, authenticator
):
    basic = client_with("Basic " + base64.b64encode(f"alice:{password}".encode()).decode())
    # HTTP Basic carries no mark, so even a validate sent with it cannot help.
    assert post(basic, VALIDATE, {"token": authenticator(totp_device)}).status_code in (401, 403)

    assert_denied(basic.get(BASIC))


def test_a_forced_authentication_without_credential_is_denied_for_a_2fa_user(
    auth_client, totp_device
):
    assert_denied(auth_client.get(PROTECTED))


# --- with_max_age --------------------------------------------------------------------------------------


def test_with_max_age_is_a_distinct_permission_class():
    from drf_totp.permissions import IsOTPVerified

    recent = IsOTPVerified.with_max_age(60)

    assert issubclass(recent, IsOTPVerified)
    assert (recent.max_age, recent.code) == (60, "otp_recent_required")
    assert IsOTPVerified.max_age is None


def test_a_session_verified_just_now_passes_the_recent_check(
    session_client, totp_device, authenticator, clock
):
    assert post(session_client, VALIDATE, {"token": authenticator(totp_device)}).status_code == 200
    clock.shift(RECENT)

    assert_allowed(session_client.get(RECENT_URL))


def test_a_session_verified_too_long_ago_fails_the_recent_check_only(
    session_client, totp_device, authenticator, clock
):
    assert post(session_client, VALIDATE, {"token": authenticator(totp_device)}).status_code == 200
    clock.shift(RECENT + 1)

    assert_denied(session_client.get(RECENT_URL), "otp_recent_required")
    assert_allowed(session_client.get(PROTECTED))


def test_validating_again_renews_the_recent_check(
    session_client, totp_device, authenticator, clock
):
    assert post(session_client, VALIDATE, {"token": authenticator(totp_device)}).status_code == 200
    clock.shift(RECENT + 30)
    assert_denied(session_client.get(RECENT_URL), "otp_recent_required")

    assert post(session_client, VALIDATE, {"token": authenticator(totp_device)}).status_code == 200

    assert_allowed(session_client.get(RECENT_URL))


def test_an_unverified_session_fails_the_recent_check(session_client, totp_device):
    assert_denied(session_client.get(RECENT_URL), "otp_recent_required")


def test_a_jwt_recent_check_reads_auth_time(user, totp_device, clock):
    access = jwt_for(user, totp_device)

    clock.shift(RECENT)
    assert_allowed(client_with(f"Bearer {access}").get(JWT_RECENT))
    clock.shift(1)
    assert_denied(client_with(f"Bearer {access}").get(JWT_RECENT), "otp_recent_required")
    assert_allowed(client_with(f"Bearer {access}").get(JWT))


def test_an_authtoken_recent_check_reads_the_mark_time(
    token_client, totp_device, authenticator, clock
):
    assert post(token_client, VALIDATE, {"token": authenticator(totp_device)}).status_code == 200

    clock.shift(RECENT)
    assert_allowed(token_client.get(RECENT_URL))
    clock.shift(1)
    assert_denied(token_client.get(RECENT_URL), "otp_recent_required")


def test_a_knox_recent_check_reads_the_mark_time(user, totp_device, authenticator, clock):
    knox = client_with(f"Token {knox_token(user)}")
    assert post(knox, KNOX_VALIDATE, {"token": authenticator(totp_device)}).status_code == 200

    clock.shift(RECENT)
    assert_allowed(knox.get(KNOX_RECENT))
    clock.shift(1)
    assert_denied(knox.get(KNOX_RECENT), "otp_recent_required")


def test_a_user_without_2fa_passes_the_recent_check(session_client, user, clock):
    clock.shift(10 * RECENT)

    assert_allowed(session_client.get(RECENT_URL))


# --- disable, then enable again -----------------------------------------------------------------------


def test_a_session_mark_does_not_count_for_a_new_device(
    session_client, auth_client, totp_device, authenticator, clock
):
    assert post(session_client, VALIDATE, {"token": authenticator(totp_device)}).status_code == 200
    clock.shift(30)
    assert post(session_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200
    assert_allowed(session_client.get(PROTECTED))  # no 2FA now: allowed, as for anyone

    reenable(auth_client, authenticator)  # from another client: this session is not re-marked

    assert marks.SESSION_KEY in session_client.session  # the old mark is still there...
    assert_denied(session_client.get(PROTECTED))  # ...and does not count


def test_a_jwt_claim_does_not_count_for_a_new_device(auth_client, user, totp_device, authenticator):
    access = jwt_for(user, totp_device)
    assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200

    reenable(auth_client, authenticator)

    assert_denied(client_with(f"Bearer {access}").get(JWT))


def test_an_authtoken_mark_does_not_count_for_a_new_device(
    token_client, auth_client, user, totp_device, authenticator, clock
):
    assert post(token_client, VALIDATE, {"token": authenticator(totp_device)}).status_code == 200
    clock.shift(30)
    assert post(token_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200

    reenable(auth_client, authenticator)  # from another client: this token is not re-marked

    assert_denied(token_client.get(PROTECTED))


def test_a_knox_mark_does_not_count_for_a_new_device(
    auth_client, user, totp_device, authenticator, clock
):
    knox = client_with(f"Token {knox_token(user)}")
    assert post(knox, KNOX_VALIDATE, {"token": authenticator(totp_device)}).status_code == 200
    clock.shift(30)
    assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200

    reenable(auth_client, authenticator)

    assert_denied(knox.get(KNOX))


def test_a_token_mark_left_over_for_an_old_device_does_not_count(token_client, user, totp_device):
    # Even if a row survived (e.g. written by a request racing the disable), it names the old
    # device, and the permission checks the device.
    VerifiedToken.objects.create(
        user=user,
        digest=LoginToken.objects.get(user=user).digest,
        device_id=totp_device.pk + 1000,
        verified_at=timezone.now(),
    )

    assert_denied(token_client.get(PROTECTED))


def test_confirming_a_device_marks_the_session_that_confirmed_it(session_client, authenticator):
    assert_allowed(session_client.get(PROTECTED))  # no 2FA yet

    reenable(session_client, authenticator)

    assert_allowed(session_client.get(PROTECTED))


def test_confirming_a_device_marks_the_token_that_confirmed_it(token_client, authenticator):
    reenable(token_client, authenticator)

    assert_allowed(token_client.get(PROTECTED))
