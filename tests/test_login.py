"""The two-step login over HTTP: POST /auth/otp/login/ (the password) and
POST /auth/otp/login/verify/ (the ticket and a code).

Step one answers a wrong password, an unknown user and an inactive user alike, and runs the
password hasher in every case. Step two shares the code rules of /validate/: the replay rule and
the lock. Both steps are throttled (per client IP; step one also per submitted username).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.sessions.models import Session
from django.test import override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token

from drf_totp.credentials import KnoxIssuer
from drf_totp.models import LoginToken, TOTPDevice, VerifiedToken
from tests.code_checks import LOGIN, LOGIN_VERIFY, VALIDATE, assert_refused, post, wrong

pytestmark = pytest.mark.usefixtures("clock")


def password_step(client, username: str = "alice", password: str = "", **extra):
    return post(client, LOGIN, {"username": username, "password": password}, **extra)


def assert_error(response, status: int, code: str, field: str | None = None) -> None:
    """``assert_refused``, with a ``detail`` for people as well."""
    assert_refused(response, status, code, field)
    assert response.json()["detail"]


def no_credential_issued() -> bool:
    """No session, login token, DRF token, knox token or token mark exists."""
    from knox.models import get_token_model

    return not (
        Session.objects.exists()
        or LoginToken.objects.exists()
        or Token.objects.exists()
        or get_token_model().objects.exists()
        or VerifiedToken.objects.exists()
    )


class CountingHasher(MD5PasswordHasher):
    """The test suite's MD5 hasher, counting how often a password is hashed."""

    calls = 0

    def encode(self, password, salt):
        type(self).calls += 1
        return super().encode(password, salt)


@pytest.fixture
def hashes():
    """``hashes()`` is the number of password hashings since the fixture was set up."""
    CountingHasher.calls = 0
    with override_settings(PASSWORD_HASHERS=["tests.test_login.CountingHasher"]):
        yield lambda: CountingHasher.calls


# --- step one: the password ----------------------------------------------------------------------


@pytest.mark.parametrize("issuer", ["session", "authtoken", "simplejwt", "knox"])
def test_password_of_a_2fa_user_yields_a_ticket_and_no_credential(
    api_client, user, password, totp_device, settings, issuer
):
    settings.TOTP_LOGIN_CREDENTIAL = issuer

    response = password_step(api_client, password=password)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"mfa_required", "ticket", "expires_in"}
    assert body["mfa_required"] is True
    assert isinstance(body["ticket"], str) and body["ticket"]
    assert body["expires_in"] == 300
    assert "no-store" in response["Cache-Control"]
    assert "sessionid" not in response.cookies
    assert no_credential_issued()


def test_expires_in_follows_the_ticket_max_age_setting(
    api_client, user, password, totp_device, settings
):
    settings.TOTP_TICKET_MAX_AGE = 90

    response = password_step(api_client, password=password)

    assert response.json()["expires_in"] == 90


def test_password_of_a_user_without_2fa_yields_the_credential_at_once(api_client, user, password):
    response = password_step(api_client, password=password)

    assert response.status_code == 200, response.content
    assert "ticket" not in response.json()
    assert "mfa_required" not in response.json()
    session = Session.objects.get(session_key=response.cookies["sessionid"].value)
    assert session.get_decoded()["_auth_user_id"] == str(user.pk)


def test_a_pending_device_does_not_turn_2fa_on_for_login(api_client, user, password, make_device):
    make_device(user, confirmed=False)

    response = password_step(api_client, password=password)

    assert response.status_code == 200, response.content
    assert "ticket" not in response.json()
    assert "sessionid" in response.cookies


def test_login_takes_the_user_models_username_field(
    api_client, user, password, totp_device, monkeypatch
):
    monkeypatch.setattr(get_user_model(), "USERNAME_FIELD", "email")

    by_email = post(api_client, LOGIN, {"email": "alice@example.com", "password": password})
    by_username = post(api_client, LOGIN, {"username": "alice", "password": password})

    assert by_email.status_code == 200, by_email.content
    assert by_email.json()["mfa_required"] is True
    assert_error(by_username, 400, "unexpected_field", "username")


@pytest.fixture
def inactive_user(db, django_user_model, password):
    return django_user_model.objects.create_user(
        username="carol", email="carol@example.com", password=password, is_active=False
    )


@pytest.mark.parametrize(
    "case", ["wrong password", "unknown user", "inactive user", "inactive user, wrong password"]
)
def test_refused_logins_get_one_and_the_same_answer(
    api_client, user, inactive_user, password, case
):
    username, secret = {
        "wrong password": ("alice", "wrong " + password),
        "unknown user": ("mallory", password),
        "inactive user": ("carol", password),
        "inactive user, wrong password": ("carol", "wrong " + password),
    }[case]

    response = password_step(api_client, username, secret)

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Unable to log in with the provided credentials.",
        "code": "invalid_credentials",
        "errors": {
            "non_field_errors": [
                {
                    "message": "Unable to log in with the provided credentials.",
                    "code": "invalid_credentials",
                }
            ]
        },
    }
    assert no_credential_issued()


def test_an_inactive_2fa_user_gets_no_ticket(api_client, inactive_user, password, make_device):
    make_device(inactive_user)

    response = password_step(api_client, "carol", password)

    assert_error(response, 400, "invalid_credentials", "non_field_errors")


@pytest.mark.parametrize("with_2fa", [False, True], ids=["without 2FA", "with 2FA"])
def test_an_inactive_user_is_refused_even_by_a_backend_that_authenticates_inactive_users(
    api_client, inactive_user, password, make_device, settings, with_2fa
):
    # Projects use AllowAllUsersModelBackend to tell inactive users why they cannot log in;
    # the login must still refuse them, with the same answer as a wrong password.
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.AllowAllUsersModelBackend"]
    if with_2fa:
        make_device(inactive_user)

    response = password_step(api_client, "carol", password)

    assert_error(response, 400, "invalid_credentials", "non_field_errors")
    assert no_credential_issued()


@pytest.mark.parametrize("username", ["alice", "mallory", "carol"])
def test_the_password_hasher_runs_whether_or_not_the_user_exists(
    api_client, user, inactive_user, password, hashes, username
):
    response = password_step(api_client, username, "wrong " + password)

    assert response.status_code == 400
    # The same work for an existing, an unknown and an inactive user: one hashing each.
    assert hashes() == 1


def test_a_successful_password_step_also_hashes_once(api_client, user, password, hashes):
    assert password_step(api_client, password=password).status_code == 200
    assert hashes() == 1


@pytest.mark.parametrize(
    "body,field,code",
    [
        ({"password": "x"}, "username", "required"),
        ({"username": "alice"}, "password", "required"),
        ({"username": "alice", "password": "x", "token": "123456"}, "token", "unexpected_field"),
        ({"username": ["alice"], "password": "x"}, "username", "invalid"),
        # Empty strings: the OpenAPI schema says minLength 1 (tests/test_openapi.py).
        ({"username": "", "password": "x"}, "username", "blank"),
        ({"username": "alice", "password": ""}, "password", "blank"),
    ],
)
def test_malformed_password_step_is_a_field_error(api_client, user, body, field, code):
    response = post(api_client, LOGIN, body)

    assert_error(response, 400, code, field)


def test_unparsable_body_is_a_400(api_client, user):
    response = api_client.post(LOGIN, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


# --- step two: the ticket and a code ---------------------------------------------------------------


def test_ticket_and_current_code_complete_the_login(
    api_client, user, totp_device, ticket, authenticator
):
    response = post(
        api_client, LOGIN_VERIFY, {"ticket": ticket, "token": authenticator(totp_device)}
    )

    assert response.status_code == 200, response.content
    assert response.json() == {"detail": "Logged in."}
    assert "no-store" in response["Cache-Control"]
    session = Session.objects.get(session_key=response.cookies["sessionid"].value)
    assert session.get_decoded()["_auth_user_id"] == str(user.pk)
    totp_device.refresh_from_db()
    assert totp_device.last_used_step == int(timezone.now().timestamp()) // 30
    assert totp_device.use_count == 1


def test_ticket_and_a_recovery_code_complete_the_login(api_client, user, ticket, recovery_codes):
    response = post(api_client, LOGIN_VERIFY, {"ticket": ticket, "token": recovery_codes[0]})

    assert response.status_code == 200, response.content
    assert "sessionid" in response.cookies


def test_a_wrong_code_at_login_is_refused_and_counted(
    api_client, totp_device, ticket, authenticator
):
    response = post(
        api_client, LOGIN_VERIFY, {"ticket": ticket, "token": wrong(authenticator(totp_device))}
    )

    assert_error(response, 400, "invalid_token", "token")
    assert "sessionid" not in response.cookies
    totp_device.refresh_from_db()
    assert totp_device.failure_count == 1
    assert no_credential_issued()


def test_a_code_used_at_validate_is_refused_at_login(
    api_client, auth_client, user, password, totp_device, authenticator
):
    code = authenticator(totp_device)
    assert post(auth_client, VALIDATE, {"token": code}).status_code == 200
    ticket = password_step(api_client, password=password).json()["ticket"]

    response = post(api_client, LOGIN_VERIFY, {"ticket": ticket, "token": code})

    assert_error(response, 400, "token_reused", "token")


def test_a_code_used_at_login_is_refused_at_validate(
    api_client, auth_client, totp_device, ticket, authenticator
):
    code = authenticator(totp_device)
    assert post(api_client, LOGIN_VERIFY, {"ticket": ticket, "token": code}).status_code == 200

    response = post(auth_client, VALIDATE, {"token": code})

    assert_error(response, 400, "token_reused", "token")


def test_failures_at_login_and_at_validate_add_up_to_one_lock(
    api_client, auth_client, totp_device, ticket, authenticator, settings, unthrottled
):
    settings.TOTP_FREE_FAILURES = 4
    settings.TOTP_LOCKOUT_SECONDS = 30
    bad = {"token": wrong(authenticator(totp_device))}
    for _ in range(2):
        assert post(auth_client, VALIDATE, bad).status_code == 400
    for _ in range(2):
        assert post(api_client, LOGIN_VERIFY, {**bad, "ticket": ticket}).status_code == 400

    # The fifth failure, wherever it comes from, locks both endpoints.
    assert post(auth_client, VALIDATE, bad).status_code == 400
    good = authenticator(totp_device)
    at_login = post(api_client, LOGIN_VERIFY, {"ticket": ticket, "token": good})
    at_validate = post(auth_client, VALIDATE, {"token": good})

    assert_error(at_login, 429, "locked")
    assert at_login["Retry-After"] == "30"  # TOTP_LOCKOUT_SECONDS for the first lock
    assert_error(at_validate, 429, "locked")
    totp_device.refresh_from_db()
    assert totp_device.failure_count == 5


def test_a_lock_from_validate_holds_at_login(api_client, totp_device, ticket, authenticator):
    TOTPDevice.objects.filter(pk=totp_device.pk).update(
        failure_count=5, locked_until=timezone.now() + timedelta(seconds=60)
    )

    response = post(
        api_client, LOGIN_VERIFY, {"ticket": ticket, "token": authenticator(totp_device)}
    )

    assert_error(response, 429, "locked")
    assert response["Retry-After"] == "60"


@pytest.mark.parametrize(
    "body,field,code",
    [
        ({"token": "123456"}, "ticket", "required"),
        ({"ticket": "x"}, "token", "required"),
        ({"ticket": "x", "token": 123456}, "token", "invalid"),
        ({"ticket": "x", "token": "123456", "username": "alice"}, "username", "unexpected_field"),
        ({"ticket": "", "token": "123456"}, "ticket", "blank"),
    ],
)
def test_malformed_verify_step_is_a_field_error(api_client, user, body, field, code):
    assert_error(post(api_client, LOGIN_VERIFY, body), 400, code, field)


def test_a_malformed_code_at_login_is_invalid_format(api_client, totp_device, ticket):
    response = post(api_client, LOGIN_VERIFY, {"ticket": ticket, "token": "12345x"})

    assert_error(response, 400, "invalid_format", "token")
    totp_device.refresh_from_db()
    assert totp_device.failure_count == 0


# --- throttles -------------------------------------------------------------------------------------


def login_rates(settings, **rates):
    """Set the login throttle rates; scopes not named are off."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "totp_login_ip": rates.get("ip"),
            "totp_login_user": rates.get("user"),
        },
    }


@pytest.mark.usefixtures("counting_cache")
def test_password_step_is_throttled_per_client_ip(api_client, user, password, settings):
    login_rates(settings, ip="2/min")
    here = {"REMOTE_ADDR": "192.0.2.1"}

    answers = [password_step(api_client, name, password, **here).status_code for name in "abc"]
    elsewhere = password_step(api_client, "d", password, REMOTE_ADDR="192.0.2.2")

    assert answers == [400, 400, 429]
    assert elsewhere.status_code == 400


@pytest.mark.usefixtures("counting_cache")
def test_password_step_is_throttled_per_username_across_ips(api_client, user, password, settings):
    login_rates(settings, user="2/min")

    answers = [
        password_step(api_client, "alice", "guess", REMOTE_ADDR=f"192.0.2.{n}").status_code
        for n in range(1, 4)
    ]
    right_password_too = password_step(api_client, "alice", password, REMOTE_ADDR="192.0.2.9")
    other_name = password_step(api_client, "bob", "guess", REMOTE_ADDR="192.0.2.1")

    assert answers == [400, 400, 429]
    assert right_password_too.status_code == 429
    assert right_password_too.json()["code"] == "throttled"
    assert "Retry-After" in right_password_too
    assert other_name.status_code == 400


@pytest.mark.usefixtures("counting_cache")
def test_username_throttle_counts_unknown_usernames_too(api_client, db, settings):
    login_rates(settings, user="1/min")

    first = password_step(api_client, "nobody", "guess")
    second = password_step(api_client, "nobody", "guess")

    assert (first.status_code, second.status_code) == (400, 429)


@pytest.mark.parametrize("variant", [" alice", "alice ", "\talice"])
def test_surrounding_whitespace_in_the_username_reaches_the_same_account(
    api_client, user, password, variant
):
    response = password_step(api_client, variant, password)

    assert response.status_code == 200, response.content
    session = Session.objects.get(session_key=response.cookies["sessionid"].value)
    assert session.get_decoded()["_auth_user_id"] == str(user.pk)


@pytest.mark.usefixtures("counting_cache")
@pytest.mark.parametrize("variant", ["ALICE", " alice", "alice ", "\talice"])
def test_username_throttle_is_not_evaded_by_spelling_the_username_differently(
    api_client, user, password, settings, variant
):
    login_rates(settings, user="1/min")
    assert password_step(api_client, "alice", "guess", REMOTE_ADDR="192.0.2.1").status_code == 400

    # Every variant reaches alice's account, so it must count against alice's bucket.
    response = password_step(api_client, variant, "guess", REMOTE_ADDR="192.0.2.2")

    assert response.status_code == 429, response.content


@pytest.mark.usefixtures("counting_cache")
def test_verify_step_is_throttled_per_client_ip_with_the_password_step(
    api_client, user, password, totp_device, authenticator, settings
):
    login_rates(settings, ip="3/min")
    ticket = password_step(api_client, password=password).json()["ticket"]
    body = {"ticket": ticket, "token": wrong(authenticator(totp_device))}

    # Both steps draw on one per-IP budget: the password step above was the first of three.
    answers = [post(api_client, LOGIN_VERIFY, body).status_code for _ in range(3)]
    elsewhere = post(api_client, LOGIN_VERIFY, body, REMOTE_ADDR="192.0.2.2")

    assert answers == [400, 400, 429]
    assert elsewhere.status_code == 400


@pytest.mark.usefixtures("counting_cache")
def test_login_throttles_apply_by_default(api_client, user, password):
    answers = [password_step(api_client, "alice", "guess").status_code for _ in range(11)]

    assert answers == [400] * 10 + [429]


# --- several authentication backends -----------------------------------------------------------

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
ALLOW_ALL_BACKEND = "django.contrib.auth.backends.AllowAllUsersModelBackend"
ALLAUTH_BACKEND = "allauth.account.auth_backends.AuthenticationBackend"


@pytest.mark.parametrize(
    "backends",
    [
        [MODEL_BACKEND, ALLOW_ALL_BACKEND],
        [ALLOW_ALL_BACKEND, MODEL_BACKEND],
        [ALLAUTH_BACKEND, MODEL_BACKEND],  # allauth's documented setup, its backend first
        [MODEL_BACKEND, ALLAUTH_BACKEND],
    ],
)
def test_a_session_login_with_several_backends_logs_in_with_the_one_that_checked_the_password(
    api_client, user, password, totp_device, authenticator, settings, backends
):
    settings.AUTHENTICATION_BACKENDS = backends
    ticket = password_step(api_client, password=password).json()["ticket"]

    response = post(
        api_client, LOGIN_VERIFY, {"ticket": ticket, "token": authenticator(totp_device)}
    )

    assert response.status_code == 200, response.content
    session = Session.objects.get(session_key=response.cookies["sessionid"].value).get_decoded()
    assert session["_auth_user_id"] == str(user.pk)
    assert session["_auth_user_backend"] == backends[0]  # the first that accepts the password
    assert api_client.get("/protected/").json() == {"username": "alice"}


def test_a_ticket_whose_backend_is_no_longer_configured_is_invalid(
    api_client, user, password, totp_device, authenticator, settings
):
    settings.AUTHENTICATION_BACKENDS = [ALLOW_ALL_BACKEND, MODEL_BACKEND]
    ticket = password_step(api_client, password=password).json()["ticket"]
    settings.AUTHENTICATION_BACKENDS = [MODEL_BACKEND]

    response = post(
        api_client, LOGIN_VERIFY, {"ticket": ticket, "token": authenticator(totp_device)}
    )

    assert_error(response, 400, "invalid_ticket", "ticket")
    totp_device.refresh_from_db()
    assert totp_device.use_count == 0
    assert no_credential_issued()


# --- the credential and the code: together or not at all -------------------------------------------


class FailingKnoxIssuer(KnoxIssuer):
    """knox's issuer, failing after it wrote the token and its mark while ``failures`` > 0."""

    failures = 0

    def issue(self, request, user, device, now):
        body = super().issue(request, user, device, now)
        if type(self).failures:
            type(self).failures -= 1
            raise RuntimeError("the credential could not be issued")
        return body


@pytest.fixture
def failing_issuer(settings):
    settings.TOTP_LOGIN_CREDENTIAL = "tests.test_login.FailingKnoxIssuer"
    FailingKnoxIssuer.failures = 1
    yield FailingKnoxIssuer
    FailingKnoxIssuer.failures = 0


@pytest.mark.parametrize("kind", ["totp", "recovery"])
def test_a_failure_while_issuing_leaves_the_code_and_the_ticket_usable(
    api_client, user, totp_device, ticket, recovery_codes, authenticator, failing_issuer, kind
):
    from knox.models import get_token_model

    code = authenticator(totp_device) if kind == "totp" else recovery_codes[0]
    body = {"ticket": ticket, "token": code}

    with pytest.raises(RuntimeError):
        post(api_client, LOGIN_VERIFY, body)

    assert no_credential_issued()  # the token and its mark were rolled back
    device = TOTPDevice.objects.get(pk=totp_device.pk)
    assert (device.use_count, device.last_used_step) == (0, 0)
    retry = post(api_client, LOGIN_VERIFY, body)
    assert retry.status_code == 200, retry.content
    assert get_token_model().objects.filter(user=user).count() == 1
    assert VerifiedToken.objects.filter(device_id=totp_device.pk).count() == 1
    # ...and then both are used up.
    assert_error(post(api_client, LOGIN_VERIFY, body), 400, "invalid_ticket", "ticket")


def test_a_failing_session_login_leaves_the_code_and_the_ticket_usable(
    api_client, user, totp_device, ticket, authenticator, monkeypatch
):
    from django.contrib.auth import login as django_login

    from drf_totp import credentials

    def login_failing_once(request, user, backend=None):
        monkeypatch.setattr(credentials, "login", django_login)
        raise ValueError("You have multiple authentication backends configured...")

    monkeypatch.setattr(credentials, "login", login_failing_once)
    body = {"ticket": ticket, "token": authenticator(totp_device)}

    with pytest.raises(ValueError):
        post(api_client, LOGIN_VERIFY, body)

    totp_device.refresh_from_db()
    assert (totp_device.use_count, totp_device.last_used_step) == (0, 0)
    retry = post(api_client, LOGIN_VERIFY, body)
    assert retry.status_code == 200, retry.content
    assert "sessionid" in retry.cookies
