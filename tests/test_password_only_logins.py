"""A password alone never yields a credential that passes ``IsOTPVerified`` (issue 11, item 2).

Projects route logins that check a password only next to drf-totp's: DRF's
``obtain_auth_token`` and dj-rest-auth's ``LoginView`` (tests/urls.py, the real views), which
both hand out the user's one DRF ``Token`` through ``Token.objects.get_or_create``. Whatever
drf-totp did for the user before, that token never passes: the "authtoken" login issues
drf-totp's own tokens, and DRF's ``Token`` never carries a mark.
"""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from knox.models import get_token_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from drf_totp.models import LoginToken, TOTPDevice, VerifiedToken
from tests.code_checks import GENERATE, LOGIN, LOGIN_VERIFY, VALIDATE, VERIFY, client_with, post

PROTECTED = "/protected/"
OBTAIN_AUTH_TOKEN = "/password-only/authtoken/"
DJ_REST_AUTH_LOGIN = "/password-only/dj-rest-auth/"
PASSWORD_ONLY = [OBTAIN_AUTH_TOKEN, DJ_REST_AUTH_LOGIN]

pytestmark = pytest.mark.usefixtures("clock")


def password_only_token(url: str, password: str) -> str:
    """The DRF token that the password-only login at ``url`` hands out for alice."""
    response = post(APIClient(), url, {"username": "alice", "password": password})
    assert response.status_code == 200, response.content
    body = response.json()
    return body.get("token") or body["key"]  # dj-rest-auth calls it "key"


def assert_denied(response) -> None:
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "otp_required"


@pytest.mark.parametrize("url", PASSWORD_ONLY)
def test_after_a_2fa_login_the_password_only_token_does_not_pass(
    api_client, user, password, totp_device, authenticator, settings, url
):
    settings.TOTP_LOGIN_CREDENTIAL = "authtoken"
    ticket = post(api_client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]
    login = post(api_client, LOGIN_VERIFY, {"ticket": ticket, "token": authenticator(totp_device)})
    assert client_with(f"Token {login.json()['token']}").get(PROTECTED).status_code == 200

    key = password_only_token(url, password)

    assert key != login.json()["token"]
    assert_denied(client_with(f"Token {key}").get(PROTECTED))


@pytest.mark.parametrize("url", PASSWORD_ONLY)
def test_validate_refuses_a_drf_token_before_checking_the_code(
    user, password, totp_device, authenticator, url
):
    key = password_only_token(url, password)
    code = authenticator(totp_device)

    response = post(client_with(f"Token {key}"), VALIDATE, {"token": code})

    assert response.status_code == 403, response.content
    assert response.json()["code"] == "credential_not_markable"
    assert not VerifiedToken.objects.exists()
    device = TOTPDevice.objects.get(pk=totp_device.pk)  # the code was not used, nor counted
    assert (device.use_count, device.failure_count, device.last_used_step) == (0, 0, 0)
    # The same password hands out the same key, still without a mark.
    assert password_only_token(url, password) == key
    assert_denied(client_with(f"Token {key}").get(PROTECTED))


def test_confirming_a_device_with_a_drf_token_turns_2fa_on_without_marking_the_token(
    user, password, authenticator
):
    key = password_only_token(OBTAIN_AUTH_TOKEN, password)
    client = client_with(f"Token {key}")
    assert client.get(PROTECTED).status_code == 200  # no 2FA yet

    url = post(client, GENERATE, {}).json()["otpauth_url"]
    response = post(client, VERIFY, {"token": authenticator(url)})

    assert response.status_code == 200, response.content
    assert response.json()["enabled"] is True
    assert not VerifiedToken.objects.exists()
    assert_denied(client.get(PROTECTED))
    assert_denied(
        client_with(f"Token {password_only_token(OBTAIN_AUTH_TOKEN, password)}").get(PROTECTED)
    )


def test_a_mark_an_older_version_wrote_for_a_drf_token_does_not_count(user, totp_device):
    key = Token.objects.create(user=user).key
    VerifiedToken.objects.create(
        user=user,
        digest=hashlib.sha256(key.encode()).hexdigest(),
        device_id=totp_device.pk,
        verified_at=timezone.now(),
    )

    assert_denied(client_with(f"Token {key}").get(PROTECTED))


@pytest.mark.django_db(transaction=True)
def test_migrating_deletes_the_marks_written_for_drf_tokens_and_keeps_knoxs(user, totp_device):
    """The database as an earlier version left it, then ``migrate``."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("drf_totp")
    executor.migrate([("drf_totp", "0001_v1_initial")])
    drf_key = Token.objects.create(user=user).key
    knox_digest = get_token_model().objects.create(user=user)[0].digest
    # A knox token hashed with SHA-256 (knox's SECURE_HASH_ALGORITHM): 64 digits too.
    sha256_knox_digest = "e" * 64
    other = get_token_model().objects.create(user=user)[0]
    get_token_model().objects.filter(digest=other.digest).update(digest=sha256_knox_digest)
    digests = [
        hashlib.sha256(drf_key.encode()).hexdigest(),  # a DRF token's mark
        hashlib.sha256(b"0" * 40).hexdigest(),  # the mark of a DRF token deleted since
        knox_digest,
        "f" * 128,  # the mark of a knox token deleted since
        sha256_knox_digest,
    ]
    with connection.cursor() as cursor:  # the table as 0001 made it
        for digest in digests:
            cursor.execute(
                "INSERT INTO drf_totp_verifiedtoken (user_id, digest, device_id, verified_at)"
                " VALUES (%s, %s, %s, %s)",
                [user.pk, digest, totp_device.pk, timezone.now()],
            )

    MigrationExecutor(connection).migrate(latest)

    kept = set(VerifiedToken.objects.values_list("digest", flat=True))
    assert kept == {knox_digest, "f" * 128, sha256_knox_digest}
    assert not LoginToken.objects.exists()
