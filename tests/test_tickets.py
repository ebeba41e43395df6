"""The login ticket: signed, short-lived, bound to its user, single-use, and never a credential.

A ticket dies when the login it was issued for completes, when the password changes, when 2FA
is disabled (or disabled and enabled again), and after ``TOTP_TICKET_MAX_AGE`` seconds. It is
refused when tampered with, and it cannot serve another user or authenticate any request.
"""

from __future__ import annotations

import pytest
from django.core import signing
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken

from drf_totp import recovery, tickets
from drf_totp.models import TOTPDevice
from tests.code_checks import (
    DISABLE,
    GENERATE,
    VERIFY,
    assert_refused,
    post,
    redeem,
    start_login,
    wrong,
)

pytestmark = pytest.mark.usefixtures("clock")


# --- single use ------------------------------------------------------------------------------------


def test_a_ticket_completes_one_login_only(api_client, totp_device, ticket, authenticator, clock):
    assert redeem(api_client, ticket, authenticator(totp_device)).status_code == 200
    clock.shift(30)

    again = redeem(api_client, ticket, authenticator(totp_device))

    assert_refused(again, 400, "invalid_ticket", "ticket")
    totp_device.refresh_from_db()
    assert totp_device.use_count == 1


def test_a_recovery_code_also_uses_the_ticket_up(api_client, ticket, recovery_codes):
    assert redeem(api_client, ticket, recovery_codes[0]).status_code == 200

    again = redeem(api_client, ticket, recovery_codes[1])

    assert_refused(again, 400, "invalid_ticket", "ticket")
    assert recovery.unused(TOTPDevice.objects.get().user_id).count() == 9


def test_completing_one_login_kills_the_other_outstanding_tickets(
    api_client, user, password, totp_device, authenticator, clock
):
    first = start_login(api_client, user, password)
    second = start_login(api_client, user, password)
    assert redeem(api_client, first, authenticator(totp_device)).status_code == 200
    clock.shift(30)

    assert_refused(redeem(api_client, second, authenticator(totp_device)), 400, "invalid_ticket")


def test_a_wrong_code_does_not_use_the_ticket_up(api_client, totp_device, ticket, authenticator):
    assert redeem(api_client, ticket, wrong(authenticator(totp_device))).status_code == 400

    assert redeem(api_client, ticket, authenticator(totp_device)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_ticket_completes_one_login_when_sent_with_many_codes_at_once(
    user, password, totp_device, unthrottled, in_threads, api_client
):
    codes = recovery.issue(user, totp_device.created_at)
    ticket = start_login(api_client, user, password)

    # Ten requests, each with a different valid recovery code, share one ticket.
    results = in_threads(len(codes), lambda client, i: redeem(client, ticket, codes[i]))

    outcomes = [getattr(r, "status_code", None) or type(r).__name__ for r in results]
    assert outcomes.count(200) == 1, outcomes
    assert recovery.unused(user.pk).count() == len(codes) - 1
    totp_device.refresh_from_db()
    assert totp_device.use_count == 1
    # The others are refused, not a server error: the ticket was used (400), or the guesses in
    # flight hold a lock (429; each request reserves its guess first, lockout.py).
    assert set(outcomes) <= {200, 400, 429}, outcomes
    refused = [r.json()["code"] for r in results if r.status_code != 200]
    assert set(refused) <= {"invalid_ticket", "locked"}, refused


# --- lifetime --------------------------------------------------------------------------------------


@override_settings(TOTP_TICKET_MAX_AGE=60)
def test_a_ticket_works_until_its_max_age(api_client, totp_device, ticket, authenticator, clock):
    clock.shift(60)

    assert redeem(api_client, ticket, authenticator(totp_device)).status_code == 200


@override_settings(TOTP_TICKET_MAX_AGE=60)
def test_an_expired_ticket_is_refused_without_counting_or_using_the_code(
    api_client, totp_device, ticket, authenticator, clock
):
    clock.shift(61)

    response = redeem(api_client, ticket, authenticator(totp_device))

    assert_refused(response, 400, "ticket_expired", "ticket")
    totp_device.refresh_from_db()
    assert (totp_device.failure_count, totp_device.use_count, totp_device.last_used_step) == (
        0,
        0,
        0,
    )


def test_the_default_max_age_is_five_minutes(api_client, totp_device, ticket, authenticator, clock):
    clock.shift(301)

    assert_refused(redeem(api_client, ticket, authenticator(totp_device)), 400, "ticket_expired")


# --- bound to the user's state -----------------------------------------------------------------------


def test_changing_the_password_kills_outstanding_tickets(
    api_client, user, totp_device, ticket, authenticator
):
    user.set_password("a new password")
    user.save()

    assert_refused(redeem(api_client, ticket, authenticator(totp_device)), 400, "invalid_ticket")


def test_disabling_2fa_kills_outstanding_tickets(
    api_client, auth_client, totp_device, ticket, authenticator, clock
):
    assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200
    clock.shift(30)

    response = redeem(api_client, ticket, "123456")

    assert_refused(response, 400, "invalid_ticket", "ticket")


def test_a_ticket_from_before_disable_does_not_work_for_the_new_device(
    api_client, auth_client, totp_device, ticket, authenticator, clock
):
    assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200
    url = post(auth_client, GENERATE, {}).json()["otpauth_url"]
    assert post(auth_client, VERIFY, {"token": authenticator(url)}).status_code == 200
    clock.shift(30)

    response = redeem(api_client, ticket, authenticator(url))

    assert_refused(response, 400, "invalid_ticket", "ticket")


def test_a_ticket_of_a_deactivated_user_is_refused(
    api_client, user, totp_device, ticket, authenticator
):
    user.is_active = False
    user.save()

    assert_refused(redeem(api_client, ticket, authenticator(totp_device)), 400, "invalid_ticket")


def test_a_ticket_of_a_deleted_user_is_refused(api_client, user, ticket):
    user.delete()

    assert_refused(redeem(api_client, ticket, "123456"), 400, "invalid_ticket")


# --- signed, and useless for anyone else -------------------------------------------------------------


def tampered(ticket: str) -> str:
    """``ticket`` with one character of its payload changed."""
    i = 2
    return ticket[:i] + ("A" if ticket[i] != "A" else "B") + ticket[i + 1 :]


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(tampered, id="payload changed"),
        pytest.param(lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), id="signature changed"),
        pytest.param(lambda t: t.rsplit(":", 1)[0], id="signature cut off"),
        pytest.param(lambda t: "not a ticket", id="garbage"),
        pytest.param(
            lambda t: signing.dumps(signing.loads(t, salt=tickets._SALT)), id="other salt"
        ),
        pytest.param(
            lambda t: signing.dumps(
                signing.loads(t, salt=tickets._SALT), key="another secret key", salt=tickets._SALT
            ),
            id="other key",
        ),
    ],
)
def test_a_forged_ticket_is_refused(api_client, totp_device, ticket, authenticator, forge):
    response = redeem(api_client, forge(ticket), authenticator(totp_device))

    assert_refused(response, 400, "invalid_ticket", "ticket")
    totp_device.refresh_from_db()
    assert (totp_device.use_count, totp_device.failure_count) == (0, 0)


def test_a_ticket_carries_no_password_hash_and_no_secret(user, ticket, totp_device):
    payload = signing.loads(ticket, salt=tickets._SALT)

    assert set(payload) == {"u", "b", "f"}
    assert payload["u"] == str(user.pk)
    assert payload["b"] == "django.contrib.auth.backends.ModelBackend"
    for secret in (user.password, totp_device.secret):
        assert secret not in ticket
        assert secret not in str(payload)


def test_alices_ticket_with_bobs_code_is_refused(
    api_client, other_user, make_device, totp_device, ticket, authenticator
):
    bobs_device = make_device(other_user)

    response = redeem(api_client, ticket, authenticator(bobs_device))

    assert_refused(response, 400, "invalid_token", "token")
    bobs_device.refresh_from_db()
    assert (bobs_device.use_count, bobs_device.last_used_step) == (0, 0)


def test_alices_ticket_with_bobs_recovery_code_is_refused(
    api_client, other_user, make_device, ticket
):
    make_device(other_user)
    bobs_codes = recovery.issue(other_user, TOTPDevice.objects.first().created_at)

    response = redeem(api_client, ticket, bobs_codes[0])

    assert_refused(response, 400, "invalid_token", "token")
    assert recovery.unused(other_user.pk).count() == len(bobs_codes)


def test_a_ticket_pointed_at_another_user_is_refused_even_when_signed(
    api_client, other_user, password, make_device, ticket, authenticator
):
    bobs_device = make_device(other_user)
    payload = signing.loads(ticket, salt=tickets._SALT)
    # Re-signed with the server's own key: only the binding to alice's state stops it.
    for_bob = signing.dumps({**payload, "u": str(other_user.pk)}, salt=tickets._SALT)

    response = redeem(api_client, for_bob, authenticator(bobs_device))

    assert_refused(response, 400, "invalid_ticket", "ticket")


# --- never a credential ---------------------------------------------------------------------------


PROTECTED_URLS = [
    ("get", "/auth/otp/status/"),
    ("post", "/auth/otp/generate/"),
    ("post", "/auth/otp/validate/"),
    ("post", "/auth/otp/disable/"),
    ("post", "/auth/otp/recovery-codes/"),
    ("get", "/protected/"),
    ("get", "/protected/basic/"),
    ("get", "/protected/jwt/"),
    ("get", "/protected/knox/"),
]


@pytest.mark.parametrize("method,url", PROTECTED_URLS)
@pytest.mark.parametrize("carrier", ["Token", "Bearer", "Basic", "session cookie"])
def test_a_ticket_authenticates_no_request(
    api_client, user, totp_device, ticket, authenticator, method, url, carrier
):
    if carrier == "session cookie":
        api_client.cookies["sessionid"] = ticket
    else:
        api_client.credentials(HTTP_AUTHORIZATION=f"{carrier} {ticket}")
    body = {"token": authenticator(totp_device)} if method == "post" else None

    response = getattr(api_client, method)(url, body, format="json")

    assert response.status_code in (401, 403), response.content
    totp_device.refresh_from_db()
    assert totp_device.use_count == 0


def test_a_ticket_is_not_a_jwt(ticket):
    from rest_framework_simplejwt.exceptions import TokenError

    with pytest.raises(TokenError):
        AccessToken(ticket)
