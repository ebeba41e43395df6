"""What a completed login hands the client, per ``TOTP_LOGIN_CREDENTIAL``, end to end over HTTP.

Each built-in issuer is driven through POST /auth/otp/login/ and /auth/otp/login/verify/, and its
credential is then used on a view guarded by ``IsOTPVerified`` (tests/views.py). A dotted path
plugs in a ``CredentialIssuer`` subclass; anything else is a configuration error.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from drf_totp import credentials, marks
from drf_totp.credentials import CredentialIssuer
from drf_totp.models import LoginToken, VerifiedToken
from tests.code_checks import LOGIN, LOGIN_VERIFY, client_with, post, redeem

PROTECTED = "/protected/"
PROTECTED_JWT = "/protected/jwt/"
PROTECTED_KNOX = "/protected/knox/"
JWT_REFRESH = "/protected/jwt/refresh/"

pytestmark = pytest.mark.usefixtures("clock")


def log_in(client, password: str, code: str | None = None):
    """Both login steps (the second only if a ticket comes back); the last response."""
    response = post(client, LOGIN, {"username": "alice", "password": password})
    assert response.status_code == 200, response.content
    if "ticket" not in response.json():
        return response
    assert code is not None, "alice has 2FA: a code is needed"
    return redeem(client, response.json()["ticket"], code)


# --- session -----------------------------------------------------------------------------------------


@pytest.fixture
def anonymous_session(api_client) -> str:
    """Give ``api_client`` an anonymous session (as an SPA's earlier visit would); its key."""
    session = api_client.session
    session["seen"] = True
    session.save()
    api_client.cookies["sessionid"] = session.session_key
    return session.session_key


def test_session_login_with_2fa_logs_in_under_a_fresh_session_key_and_marks_it(
    api_client, user, password, totp_device, authenticator, anonymous_session, settings
):
    settings.TOTP_LOGIN_CREDENTIAL = "session"

    response = log_in(api_client, password, authenticator(totp_device))

    assert response.status_code == 200, response.content
    assert response.json() == {"detail": "Logged in."}
    new_key = response.cookies["sessionid"].value
    assert new_key != anonymous_session
    assert not Session.objects.filter(session_key=anonymous_session).exists()
    data = Session.objects.get(session_key=new_key).get_decoded()
    assert data["_auth_user_id"] == str(user.pk)
    assert data[marks.SESSION_KEY] == {
        "device": totp_device.pk,
        "at": int(timezone.now().timestamp()),
    }
    assert response.cookies["csrftoken"].value
    assert "no-store" in response["Cache-Control"]


def test_session_login_without_a_session_creates_one_session_row(
    api_client, user, password, totp_device, authenticator
):
    ticket = post(api_client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]

    with CaptureQueriesContext(connection) as queries:
        response = redeem(api_client, ticket, authenticator(totp_device))

    assert response.status_code == 200, response.content
    sql = [q["sql"] for q in queries.captured_queries]
    assert len([s for s in sql if s.startswith("INSERT") and "django_session" in s]) == 1, sql
    assert not [s for s in sql if s.startswith("DELETE") and "django_session" in s], sql
    assert Session.objects.get().session_key == response.cookies["sessionid"].value


def test_session_from_the_login_passes_is_otp_verified(
    api_client, user, password, totp_device, authenticator
):
    log_in(api_client, password, authenticator(totp_device))

    response = api_client.get(PROTECTED)

    assert response.status_code == 200, response.content
    assert response.json() == {"username": "alice"}


def test_session_login_without_2fa_logs_in_without_a_mark(api_client, user, password):
    response = log_in(api_client, password)

    assert response.json() == {"detail": "Logged in."}
    data = Session.objects.get(session_key=response.cookies["sessionid"].value).get_decoded()
    assert data["_auth_user_id"] == str(user.pk)
    assert marks.SESSION_KEY not in data
    assert response.cookies["csrftoken"].value
    assert api_client.get(PROTECTED).status_code == 200


def test_the_csrf_cookie_from_the_login_lets_the_spa_post(
    user, password, totp_device, authenticator, clock
):
    spa = APIClient(enforce_csrf_checks=True)
    log_in(spa, password, authenticator(totp_device))
    clock.shift(30)
    code = {"token": authenticator(totp_device)}

    without_header = post(spa, "/auth/otp/validate/", code)
    spa.credentials(HTTP_X_CSRFTOKEN=spa.cookies["csrftoken"].value)
    with_header_ = post(spa, "/auth/otp/validate/", code)

    assert without_header.status_code == 403
    assert with_header_.status_code == 200, with_header_.content


def test_a_session_login_replaces_another_users_session(
    api_client, user, other_user, password, totp_device, authenticator
):
    assert api_client.login(username="bob", password=password)
    bobs_key = api_client.cookies["sessionid"].value

    response = log_in(api_client, password, authenticator(totp_device))

    assert response.cookies["sessionid"].value != bobs_key
    assert not Session.objects.filter(session_key=bobs_key).exists()
    assert api_client.get(PROTECTED).json() == {"username": "alice"}


def test_a_session_login_over_the_users_own_older_session_gets_a_fresh_key(
    api_client, user, password, totp_device, authenticator
):
    # A session from before the second factor (e.g. Django's admin login) must not be the one
    # that receives the 2FA mark: whoever knew its key would share the verified session.
    assert api_client.login(username="alice", password=password)
    old_key = api_client.cookies["sessionid"].value

    response = log_in(api_client, password, authenticator(totp_device))

    assert response.status_code == 200, response.content
    new_key = response.cookies["sessionid"].value
    assert new_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    assert marks.SESSION_KEY in Session.objects.get(session_key=new_key).get_decoded()


# --- DRF authtoken -----------------------------------------------------------------------------------


def test_authtoken_login_with_2fa_returns_a_marked_token_of_drf_totps_own(
    api_client, user, password, totp_device, authenticator, settings
):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"

    response = log_in(api_client, password, authenticator(totp_device))

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"token"}
    key = response.json()["token"]
    assert key.startswith("totp_")
    digest = hashlib.sha256(key.encode()).hexdigest()
    token = LoginToken.objects.get()
    assert (token.user, token.digest, token.created_at) == (user, digest, timezone.now())
    assert not Token.objects.exists()  # DRF's token is not involved
    mark = VerifiedToken.objects.get(digest=digest)
    assert (mark.user, mark.device_id, mark.verified_at) == (user, totp_device.pk, timezone.now())
    assert "sessionid" not in response.cookies
    assert "no-store" in response["Cache-Control"]
    assert client_with(f"Token {key}").get(PROTECTED).json() == {"username": "alice"}


def test_the_key_of_a_login_token_is_not_stored(
    api_client, user, password, totp_device, authenticator, settings
):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"

    key = log_in(api_client, password, authenticator(totp_device)).json()["token"]

    stored = [str(value) for value in LoginToken.objects.values().get().values()]
    assert not any(key in value or key[len("totp_") :] in value for value in stored)


def test_each_authtoken_login_adds_a_token_and_keeps_the_others(
    api_client, user, password, totp_device, authenticator, settings, clock
):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"
    first = log_in(api_client, password, authenticator(totp_device)).json()["token"]
    clock.shift(30)
    second = log_in(api_client, password, authenticator(totp_device)).json()["token"]

    assert first != second
    assert LoginToken.objects.filter(user=user).count() == 2
    for key in (first, second):
        assert client_with(f"Token {key}").get(PROTECTED).status_code == 200


def test_a_user_keeps_the_newest_login_tokens_and_the_oldest_ends_with_its_mark(
    api_client, user, password, totp_device, authenticator, settings, clock
):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"
    settings.TOTP_LOGIN_TOKENS_PER_USER = 2
    keys = []
    for _ in range(3):
        keys.append(log_in(api_client, password, authenticator(totp_device)).json()["token"])
        clock.shift(30)

    oldest, *kept = keys
    refused = client_with(f"Token {oldest}").get(PROTECTED)
    # 403, not 401: the view's first authentication class is the session's (no header to send).
    assert (refused.status_code, refused.json()["code"]) == (403, "authentication_failed")
    assert not VerifiedToken.objects.filter(digest=hashlib.sha256(oldest.encode()).hexdigest())
    assert VerifiedToken.objects.count() == 2
    for key in kept:
        assert client_with(f"Token {key}").get(PROTECTED).status_code == 200


def test_authtoken_login_leaves_the_users_drf_token_alone_and_unmarked(
    api_client, user, password, totp_device, authenticator, settings
):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"
    earlier = Token.objects.create(user=user).key

    log_in(api_client, password, authenticator(totp_device))

    assert Token.objects.filter(key=earlier).exists()
    refused = client_with(f"Token {earlier}").get(PROTECTED)
    assert (refused.status_code, refused.json()["code"]) == (403, "otp_required")


def test_authtoken_login_without_2fa_returns_an_unmarked_token(
    api_client, user, password, settings
):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"

    response = log_in(api_client, password)

    key = response.json()["token"]
    assert LoginToken.objects.get().user == user
    assert not VerifiedToken.objects.exists()
    assert client_with(f"Token {key}").get(PROTECTED).status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Token totp_unknown", "Token totp_", "token TOTP_x"],
)
def test_an_unknown_login_token_is_refused(user, header):
    response = client_with(header).get("/auth/otp/status/")

    assert (response.status_code, response.json()["code"]) == (403, "authentication_failed")


def test_a_login_token_of_an_inactive_user_is_refused(api_client, user, password, settings):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"
    key = log_in(api_client, password).json()["token"]
    user.is_active = False
    user.save()

    response = client_with(f"Token {key}").get(PROTECTED)

    assert (response.status_code, response.json()["code"]) == (403, "authentication_failed")


# --- SimpleJWT ---------------------------------------------------------------------------------------


def test_simplejwt_login_with_2fa_records_the_second_factor_in_the_claims(
    api_client, user, password, totp_device, authenticator, settings
):
    settings.TOTP_LOGIN_CREDENTIAL = "simplejwt"

    response = log_in(api_client, password, authenticator(totp_device))

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"access", "refresh"}
    assert "sessionid" not in response.cookies
    assert "no-store" in response["Cache-Control"]
    for token in (AccessToken(response.json()["access"]), RefreshToken(response.json()["refresh"])):
        assert str(token["user_id"]) == str(user.pk)
        assert token["amr"] == ["pwd", "otp"]
        assert token["auth_time"] == int(timezone.now().timestamp())
        assert token["otp_device"] == totp_device.pk


def test_simplejwt_access_token_passes_is_otp_verified(
    api_client, user, password, totp_device, authenticator, settings
):
    settings.TOTP_LOGIN_CREDENTIAL = "simplejwt"
    access = log_in(api_client, password, authenticator(totp_device)).json()["access"]

    response = client_with(f"Bearer {access}").get(PROTECTED_JWT)

    assert response.status_code == 200, response.content


def test_a_refreshed_access_token_keeps_the_claims_of_the_login(
    api_client, user, password, totp_device, authenticator, settings, clock
):
    settings.TOTP_LOGIN_CREDENTIAL = "simplejwt"
    login_time = int(timezone.now().timestamp())
    refresh = log_in(api_client, password, authenticator(totp_device)).json()["refresh"]
    clock.shift(600)

    refreshed = post(APIClient(), JWT_REFRESH, {"refresh": refresh})

    assert refreshed.status_code == 200, refreshed.content
    access = AccessToken(refreshed.json()["access"])
    assert access["amr"] == ["pwd", "otp"]
    assert access["auth_time"] == login_time  # when the factor was passed, not the refresh
    assert access["otp_device"] == totp_device.pk
    assert client_with(f"Bearer {access}").get(PROTECTED_JWT).status_code == 200


def test_simplejwt_login_without_2fa_claims_the_password_only(api_client, user, password, settings):
    settings.TOTP_LOGIN_CREDENTIAL = "simplejwt"

    response = log_in(api_client, password)

    access = AccessToken(response.json()["access"])
    assert access["amr"] == ["pwd"]
    assert access["auth_time"] == int(timezone.now().timestamp())
    assert "otp_device" not in access
    assert client_with(f"Bearer {access}").get(PROTECTED_JWT).status_code == 200


# --- knox ----------------------------------------------------------------------------------------------


def test_knox_login_with_2fa_returns_a_marked_token_with_its_expiry(
    api_client, user, password, totp_device, authenticator, settings
):
    from knox.models import get_token_model
    from knox.settings import knox_settings

    settings.TOTP_LOGIN_CREDENTIAL = "knox"

    response = log_in(api_client, password, authenticator(totp_device))

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"token", "expiry"}
    assert "sessionid" not in response.cookies
    assert "no-store" in response["Cache-Control"]
    expiry = parse_datetime(response.json()["expiry"])
    assert expiry == timezone.now() + knox_settings.TOKEN_TTL
    instance = get_token_model().objects.get(user=user)
    mark = VerifiedToken.objects.get(digest=instance.digest)
    assert (mark.user, mark.device_id) == (user, totp_device.pk)


def test_knox_token_from_the_login_authenticates_and_passes_is_otp_verified(
    api_client, user, password, totp_device, authenticator, settings
):
    settings.TOTP_LOGIN_CREDENTIAL = "knox"
    token = log_in(api_client, password, authenticator(totp_device)).json()["token"]

    response = client_with(f"Token {token}").get(PROTECTED_KNOX)

    assert response.status_code == 200, response.content
    assert response.json() == {"username": "alice"}


def test_each_knox_login_adds_a_token_and_keeps_the_others(
    api_client, user, password, totp_device, authenticator, settings, clock
):
    from knox.models import get_token_model

    settings.TOTP_LOGIN_CREDENTIAL = "knox"
    first = log_in(api_client, password, authenticator(totp_device)).json()["token"]
    clock.shift(30)
    second = log_in(api_client, password, authenticator(totp_device)).json()["token"]

    assert first != second
    assert get_token_model().objects.filter(user=user).count() == 2
    for token in (first, second):
        assert client_with(f"Token {token}").get(PROTECTED_KNOX).status_code == 200


def test_knox_login_without_2fa_returns_an_unmarked_token(api_client, user, password, settings):
    settings.TOTP_LOGIN_CREDENTIAL = "knox"

    response = log_in(api_client, password)

    assert set(response.json()) == {"token", "expiry"}
    assert not VerifiedToken.objects.exists()
    assert client_with(f"Token {response.json()['token']}").get(PROTECTED_KNOX).status_code == 200


# --- a custom issuer -----------------------------------------------------------------------------------


class RecordingIssuer(CredentialIssuer):
    """A custom credential: says who logged in, with which device, when."""

    calls: list = []

    def issue(self, request, user, device, now):
        type(self).calls.append((request, user, device, now))
        return {"custom": user.get_username(), "device": device.pk if device else None}


class NotAnIssuer:
    def issue(self, request, user, device, now):
        return {}


@pytest.fixture
def recording_issuer(settings):
    settings.TOTP_LOGIN_CREDENTIAL = "tests.test_credential_issuers.RecordingIssuer"
    RecordingIssuer.calls = []
    return RecordingIssuer.calls


def test_a_custom_issuer_named_by_dotted_path_makes_the_credential(
    api_client, user, password, totp_device, authenticator, recording_issuer
):
    response = log_in(api_client, password, authenticator(totp_device))

    assert response.status_code == 200, response.content
    assert response.json() == {"custom": "alice", "device": totp_device.pk}
    assert "no-store" in response["Cache-Control"]
    [(request, issued_to, device, now)] = recording_issuer
    assert request.path == LOGIN_VERIFY
    assert issued_to == user
    assert device.pk == totp_device.pk
    assert now == timezone.now()
    assert "sessionid" not in response.cookies


def test_a_custom_issuer_gets_no_device_for_a_user_without_2fa(
    api_client, user, password, recording_issuer
):
    response = log_in(api_client, password)

    assert response.json() == {"custom": "alice", "device": None}
    [(request, _, device, _)] = recording_issuer
    assert request.path == LOGIN
    assert device is None


def test_the_custom_issuer_is_not_called_for_the_password_step_of_a_2fa_user(
    api_client, user, password, totp_device, recording_issuer
):
    response = post(api_client, LOGIN, {"username": "alice", "password": password})

    assert response.json()["mfa_required"] is True
    assert recording_issuer == []


@pytest.mark.parametrize(
    "name",
    [
        "tests.test_credential_issuers.NotAnIssuer",  # not a CredentialIssuer subclass
        "drf_totp.credentials.get_issuer",  # not a class
        "drf_totp.credentials.NoSuchIssuer",  # no such attribute
        "tests.no_such_module.Issuer",  # no such module
        "jwt",  # a typo'd built-in name, not a dotted path
        "",
    ],
)
def test_a_bad_issuer_setting_is_improperly_configured(settings, name):
    settings.TOTP_LOGIN_CREDENTIAL = name

    with pytest.raises(ImproperlyConfigured):
        credentials.get_issuer()


def test_a_bad_issuer_setting_fails_the_login_loudly(api_client, user, password, settings):
    settings.TOTP_LOGIN_CREDENTIAL = "tests.no_such_module.Issuer"

    with pytest.raises(ImproperlyConfigured):
        post(api_client, LOGIN, {"username": "alice", "password": password})


@pytest.mark.parametrize(
    "name", ["tests.no_such_module.Issuer", "jwt", "tests.test_credential_issuers.NotAnIssuer"]
)
def test_a_bad_issuer_setting_fails_the_system_checks(settings, name):
    from django.core.checks import run_checks

    settings.TOTP_LOGIN_CREDENTIAL = name

    assert "drf_totp.E008" in [message.id for message in run_checks()]


@pytest.mark.parametrize("name", ["session", "authtoken", "simplejwt", "knox"])
def test_the_built_in_names_pick_the_built_in_issuers(settings, name):
    settings.TOTP_LOGIN_CREDENTIAL = name

    assert isinstance(credentials.get_issuer(), credentials.BUILTIN[name])


def test_the_issuer_setting_is_read_when_used(api_client, user, password, settings):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"
    assert set(log_in(api_client, password).json()) == {"token"}

    settings.TOTP_LOGIN_CREDENTIAL = "simplejwt"
    assert set(log_in(api_client, password).json()) == {"access", "refresh"}


def test_the_default_issuer_is_the_session(api_client, user, password, settings):
    del settings.TOTP_LOGIN_CREDENTIAL

    assert isinstance(credentials.get_issuer(), credentials.SessionIssuer)


# --- credentials in general ------------------------------------------------------------------------------


@pytest.mark.parametrize("issuer", ["session", "authtoken", "simplejwt", "knox"])
def test_a_failed_second_step_issues_no_credential(
    api_client, user, password, totp_device, authenticator, settings, issuer
):
    from knox.models import get_token_model

    settings.TOTP_LOGIN_CREDENTIAL = issuer
    code = authenticator(totp_device)
    bad = "".join(str((int(d) + 5) % 10) for d in code)

    response = log_in(api_client, password, bad)

    assert response.status_code == 400
    assert set(response.json()) == {"detail", "code", "errors"}
    assert "sessionid" not in response.cookies
    assert not Token.objects.exists()
    assert not get_token_model().objects.exists()
    assert not VerifiedToken.objects.exists()


def test_the_second_factor_time_is_when_the_code_was_accepted(
    api_client, user, password, totp_device, authenticator, settings, clock
):
    settings.TOTP_LOGIN_CREDENTIAL = "simplejwt"
    ticket = post(api_client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]
    clock.shift(timedelta(seconds=100))
    code_time = int(timezone.now().timestamp())

    response = post(
        api_client, LOGIN_VERIFY, {"ticket": ticket, "token": authenticator(totp_device)}
    )

    assert AccessToken(response.json()["access"])["auth_time"] == code_time
