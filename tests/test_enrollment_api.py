"""Enrollment over HTTP: POST /auth/otp/generate/ and POST /auth/otp/verify/."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from django.test import override_settings
from django.utils import timezone

from drf_totp.models import TOTPDevice
from tests.code_checks import GENERATE, VALIDATE, VERIFY, wrong

pytestmark = pytest.mark.usefixtures("clock")


def generate(client) -> dict:
    response = client.post(GENERATE, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def assert_conflict(response, code: str) -> None:
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == code
    assert body["detail"]
    assert "errors" not in body


def assert_token_error(response, code: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code
    assert body["detail"]
    [error] = body["errors"]["token"]
    assert error["code"] == code
    assert error["message"] == body["detail"]


# --- generate ---------------------------------------------------------------------------------


def test_generate_returns_a_base32_secret_of_160_bits(auth_client):
    secret = generate(auth_client)["secret"]

    assert len(base64.b32decode(secret)) == 20


def test_each_generate_draws_a_new_secret(auth_client):
    assert generate(auth_client)["secret"] != generate(auth_client)["secret"]


def test_otpauth_url_is_labelled_with_issuer_and_email(auth_client):
    body = generate(auth_client)

    url = urlsplit(body["otpauth_url"])
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc) == ("otpauth", "totp")
    assert url.path == "/drftotp:alice%40example.com"
    assert query["issuer"] == ["drftotp"]
    assert query["secret"] == [body["secret"]]


def test_otpauth_url_label_falls_back_to_username_without_email(auth_client, user):
    user.email = ""
    user.save()

    url = urlsplit(generate(auth_client)["otpauth_url"])

    assert url.path == "/drftotp:alice"


@override_settings(TOTP_ISSUER_NAME="Example Corp")
def test_issuer_name_setting_names_the_label_and_the_issuer(auth_client):
    url = urlsplit(generate(auth_client)["otpauth_url"])

    assert unquote(url.path) == "/Example Corp:alice@example.com"
    assert parse_qs(url.query)["issuer"] == ["Example Corp"]


@override_settings(TOTP_ISSUER_NAME="ACME & Co")
def test_tricky_email_and_issuer_round_trip_through_an_authenticator(auth_client, user):
    user.email = "o'brien+2fa@example.com"
    user.save()

    body = generate(auth_client)
    parsed = pyotp.parse_uri(body["otpauth_url"])

    assert parsed.name == "o'brien+2fa@example.com"
    assert parsed.issuer == "ACME & Co"
    assert parsed.secret == body["secret"]


def test_otpauth_url_describes_the_default_code_parameters(auth_client):
    parsed = pyotp.parse_uri(generate(auth_client)["otpauth_url"])

    assert (parsed.digits, parsed.interval, parsed.digest().name) == (6, 30, "sha1")


def test_generate_returns_the_qr_code_as_an_svg_data_uri(auth_client):
    qr_svg = generate(auth_client)["qr_svg"]

    assert qr_svg.startswith("data:image/svg+xml")
    assert "<svg" in unquote(qr_svg)


def test_generate_response_must_not_be_stored_by_caches(auth_client):
    response = auth_client.post(GENERATE, format="json")

    assert "no-store" in response["Cache-Control"]


def test_generate_leaves_a_pending_device_with_that_secret(auth_client, user):
    secret = generate(auth_client)["secret"]

    device = TOTPDevice.objects.get(user=user)
    assert device.secret == secret
    assert not device.is_confirmed
    assert device.confirmed_at is None


def test_second_generate_replaces_the_pending_secret(auth_client, user, authenticator):
    first = generate(auth_client)
    second = generate(auth_client)

    assert TOTPDevice.objects.filter(user=user).count() == 1
    stale = auth_client.post(VERIFY, {"token": authenticator(first["otpauth_url"])}, format="json")
    assert_token_error(stale, "invalid_token")
    fresh = auth_client.post(VERIFY, {"token": authenticator(second["otpauth_url"])}, format="json")
    assert fresh.status_code == 200, fresh.content


def test_generate_after_confirmation_is_refused_and_keeps_the_secret(
    auth_client, user, authenticator
):
    url = generate(auth_client)["otpauth_url"]
    auth_client.post(VERIFY, {"token": authenticator(url)}, format="json")
    secret = TOTPDevice.objects.get(user=user).secret

    response = auth_client.post(GENERATE, format="json")

    assert_conflict(response, "already_enabled")
    assert "secret" not in response.json()
    device = TOTPDevice.objects.get(user=user)
    assert device.is_confirmed
    assert device.secret == secret


# --- verify -----------------------------------------------------------------------------------


def test_verify_with_the_current_code_confirms_the_device(auth_client, user, authenticator):
    url = generate(auth_client)["otpauth_url"]

    response = auth_client.post(VERIFY, {"token": authenticator(url)}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["enabled"] is True
    device = TOTPDevice.objects.get(user=user)
    assert device.is_confirmed
    assert device.confirmed_at == timezone.now()


def test_code_that_confirmed_the_device_is_refused_at_validate(auth_client, authenticator):
    url = generate(auth_client)["otpauth_url"]
    code = authenticator(url)
    auth_client.post(VERIFY, {"token": code}, format="json")

    response = auth_client.post(VALIDATE, {"token": code}, format="json")

    assert_token_error(response, "token_reused")


def test_verify_without_a_pending_device_is_a_conflict(auth_client):
    response = auth_client.post(VERIFY, {"token": "123456"}, format="json")

    assert_conflict(response, "no_pending_device")


def test_verify_after_confirmation_is_a_conflict(
    auth_client, user, make_device, authenticator, clock
):
    device = make_device(user)
    clock.shift(30)

    response = auth_client.post(VERIFY, {"token": authenticator(device)}, format="json")

    assert_conflict(response, "already_enabled")
    device.refresh_from_db()
    assert device.last_used_step == 0


def test_wrong_code_at_verify_is_refused_and_the_device_stays_pending(
    auth_client, user, authenticator
):
    url = generate(auth_client)["otpauth_url"]

    response = auth_client.post(VERIFY, {"token": wrong(authenticator(url))}, format="json")

    assert_token_error(response, "invalid_token")
    device = TOTPDevice.objects.get(user=user)
    assert not device.is_confirmed
    assert device.failure_count == 1


# --- code parameters under changed settings ----------------------------------------------------


@override_settings(TOTP_DIGITS=8)
def test_eight_digit_setting_enrolls_devices_that_take_eight_digit_codes(
    auth_client, user, authenticator
):
    url = generate(auth_client)["otpauth_url"]
    code = authenticator(url)

    assert parse_qs(urlsplit(url).query)["digits"] == ["8"]
    assert len(code) == 8
    response = auth_client.post(VERIFY, {"token": code}, format="json")
    assert response.status_code == 200, response.content
    assert TOTPDevice.objects.get(user=user).digits == 8


def test_device_enrolled_with_six_digits_keeps_working_after_digits_change_to_eight(
    auth_client, user, authenticator, clock
):
    url = generate(auth_client)["otpauth_url"]
    auth_client.post(VERIFY, {"token": authenticator(url)}, format="json")
    clock.shift(30)

    with override_settings(TOTP_DIGITS=8):
        code = authenticator(url)
        response = auth_client.post(VALIDATE, {"token": code}, format="json")

    assert len(code) == 6
    assert response.status_code == 200, response.content
    assert TOTPDevice.objects.get(user=user).digits == 6


def test_generate_is_a_conflict_whatever_the_confirmed_device_is_named(
    auth_client, user, make_device
):
    make_device(user, name="imported phone")

    response = auth_client.post(GENERATE, format="json")

    assert_conflict(response, "already_enabled")
    assert TOTPDevice.objects.filter(user=user).count() == 1
