"""Opaque tokens (drf-totp's login tokens, knox) and their marks over their lifetime (issue 12,
item 6): many logins at once each get a working token, knox's ``TOKEN_LIMIT_PER_USER`` holds, and
a ``VerifiedToken`` row goes when its token goes (replaced, logged out, expired, deleted);
``totp_clear_marks`` removes the rest.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from knox.models import get_token_model
from rest_framework.test import APIClient

from drf_totp.models import LoginToken, VerifiedToken
from tests.code_checks import LOGIN, LOGIN_VERIFY, client_with, post

PROTECTED = "/protected/"
KNOX = "/protected/knox/"


def log_in(client, password: str, code: str | None = None):
    response = post(client, LOGIN, {"username": "alice", "password": password})
    if code is None or response.status_code != 200:
        return response
    return post(client, LOGIN_VERIFY, {"ticket": response.json()["ticket"], "token": code})


@pytest.fixture
def knox_marked(user, totp_device, password, authenticator, settings, clock):
    """``knox_marked()``: a knox token from alice's two-step login, with its mark."""
    settings.TOTP_LOGIN_CREDENTIAL = "knox"

    def make() -> str:
        token = log_in(APIClient(), password, authenticator(totp_device)).json()["token"]
        clock.shift(30)
        return token

    return make


# --- many logins at once ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("unthrottled")
def test_ten_simultaneous_authtoken_logins_each_get_a_token_that_works(
    user, password, settings, in_threads
):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"

    responses = in_threads(10, lambda client, i: log_in(client, password))

    assert [getattr(r, "status_code", r) for r in responses] == [200] * 10
    keys = {r.json()["token"] for r in responses}
    assert len(keys) == 10
    assert LoginToken.objects.filter(user=user).count() == 10
    for key in keys:
        assert client_with(f"Token {key}").get(PROTECTED).status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("unthrottled")
def test_simultaneous_knox_logins_stop_at_the_token_limit(user, password, settings, in_threads):
    settings.TOTP_LOGIN_CREDENTIAL = "knox"
    settings.REST_KNOX = {"TOKEN_LIMIT_PER_USER": 3}

    responses = in_threads(10, lambda client, i: log_in(client, password))

    answers = Counter(
        (r.status_code, r.json().get("code")) if hasattr(r, "status_code") else repr(r)
        for r in responses
    )
    assert answers == {(200, None): 3, (403, "token_limit_reached"): 7}
    assert get_token_model().objects.filter(user=user).count() == 3
    for response in responses:
        if response.status_code == 200:
            token = response.json()["token"]
            assert client_with(f"Token {token}").get(KNOX).status_code == 200


# --- knox's TOKEN_LIMIT_PER_USER ----------------------------------------------------------------------


def test_the_knox_token_limit_refuses_a_login_as_knox_does(
    api_client, user, password, settings, clock
):
    settings.TOTP_LOGIN_CREDENTIAL = "knox"
    settings.REST_KNOX = {"TOKEN_LIMIT_PER_USER": 2}
    assert [log_in(api_client, password).status_code for _ in range(2)] == [200, 200]

    response = log_in(api_client, password)

    assert response.status_code == 403
    assert response.json() == {
        "detail": "This account holds the most tokens allowed. Log out on another device first.",
        "code": "token_limit_reached",
    }
    assert get_token_model().objects.filter(user=user).count() == 2


def test_expired_knox_tokens_do_not_count_toward_the_limit(
    api_client, user, password, settings, clock
):
    settings.TOTP_LOGIN_CREDENTIAL = "knox"
    settings.REST_KNOX = {"TOKEN_LIMIT_PER_USER": 1, "TOKEN_TTL": timedelta(hours=1)}
    assert log_in(api_client, password).status_code == 200
    clock.shift(timedelta(hours=1, seconds=1))

    assert log_in(api_client, password).status_code == 200


def test_the_knox_limit_at_login_verify_leaves_the_code_and_the_ticket_usable(
    api_client, user, password, totp_device, authenticator, settings, clock
):
    settings.TOTP_LOGIN_CREDENTIAL = "knox"
    settings.REST_KNOX = {"TOKEN_LIMIT_PER_USER": 1}
    held = get_token_model().objects.create(user=user)[0]
    ticket = post(api_client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]
    body = {"ticket": ticket, "token": authenticator(totp_device)}

    refused = post(api_client, LOGIN_VERIFY, body)

    assert (refused.status_code, refused.json()["code"]) == (403, "token_limit_reached")
    totp_device.refresh_from_db()
    assert (totp_device.use_count, totp_device.last_used_step) == (0, 0)
    assert not VerifiedToken.objects.exists()
    held.delete()  # the user logs out elsewhere
    assert post(api_client, LOGIN_VERIFY, body).status_code == 200


# --- a mark goes with its token --------------------------------------------------------------------------


def test_knox_logout_deletes_the_mark(knox_marked, user):
    token = knox_marked()
    assert VerifiedToken.objects.count() == 1

    response = post(client_with(f"Token {token}"), "/auth/knox/logout/")

    assert response.status_code == 204
    assert not VerifiedToken.objects.exists()


def test_knox_logout_all_deletes_every_mark(knox_marked, user):
    token, _ = knox_marked(), knox_marked()
    assert VerifiedToken.objects.count() == 2

    response = post(client_with(f"Token {token}"), "/auth/knox/logoutall/")

    assert response.status_code == 204
    assert not VerifiedToken.objects.exists()


def test_an_expired_knox_token_loses_its_mark_when_knox_deletes_it(knox_marked, settings, clock):
    settings.REST_KNOX = {"TOKEN_TTL": timedelta(minutes=10)}
    token = knox_marked()
    clock.shift(timedelta(minutes=11))

    response = client_with(f"Token {token}").get(KNOX)

    assert response.status_code == 401
    assert not get_token_model().objects.exists()
    assert not VerifiedToken.objects.exists()


def test_deleting_a_login_token_deletes_its_mark(
    api_client, user, password, totp_device, authenticator, settings
):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"
    key = log_in(api_client, password, authenticator(totp_device)).json()["token"]

    LoginToken.objects.filter(digest=hashlib.sha256(key.encode()).hexdigest()).delete()

    assert not VerifiedToken.objects.exists()


# --- totp_clear_marks --------------------------------------------------------------------------------------


def test_totp_clear_marks_deletes_the_marks_of_tokens_that_are_gone(
    knox_marked, user, totp_device, settings, clock
):
    settings.REST_KNOX = {"TOKEN_TTL": timedelta(minutes=10)}
    knox_marked()
    clock.shift(timedelta(minutes=5))
    kept = knox_marked()
    VerifiedToken.objects.create(
        user=user, digest="0" * 128, device_id=totp_device.pk, verified_at=timezone.now()
    )
    clock.shift(timedelta(minutes=6))  # the first token has expired, the second has not
    out = StringIO()

    call_command("totp_clear_marks", stdout=out)

    assert out.getvalue() == "Deleted 2 mark(s) of tokens that are gone.\n"
    [mark] = VerifiedToken.objects.all()
    assert mark.digest == get_token_model().objects.get(expiry__gt=timezone.now()).digest
    assert client_with(f"Token {kept}").get(KNOX).status_code == 200
