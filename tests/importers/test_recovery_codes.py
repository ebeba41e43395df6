"""Imported recovery codes at the code check (issue #13): when typed input is looked up as one,
what it costs, and that each works once however many requests send it together."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from drf_totp import recovery
from drf_totp.models import RecoveryCode, TOTPDevice
from tests.code_checks import VALIDATE, assert_error, post, post_token

DJANGO_OTP = "django-otp"


def hold(user, format: str, *codes: str) -> None:
    """Give ``user`` imported recovery codes of ``format``, as totp_import stores them."""
    RecoveryCode.objects.bulk_create(
        RecoveryCode(
            user=user,
            digest=recovery.imported_digest(format, code),
            format=format,
            created_at=timezone.now(),
        )
        for code in codes
    )


def queries_of_lookup(user, raw: str, *, totp_code: bool) -> tuple[dict[str, str] | None, int]:
    with CaptureQueriesContext(connection) as queries:
        found = recovery.lookup(user.pk, raw, totp_code=totp_code)
    return found, len(queries)


@pytest.mark.django_db
def test_a_six_digit_code_is_never_looked_up_as_a_recovery_code(user):
    hold(user, DJANGO_OTP, "abcd2345")

    assert queries_of_lookup(user, "123456", totp_code=True) == (None, 0)
    assert queries_of_lookup(user, "123 456", totp_code=True) == (None, 0)


@pytest.mark.django_db
def test_a_code_of_drf_totps_form_is_looked_up_without_a_query(user):
    _, shown = recovery.generate()

    found, queries = queries_of_lookup(user, shown, totp_code=False)

    assert queries == 0
    assert recovery.digests(recovery.normalize(shown))[0] in recovery.candidate_digests(found)


@pytest.mark.django_db
def test_an_eight_digit_number_is_a_recovery_code_only_if_the_user_holds_it(user):
    hold(user, "allauth", "12345678")

    assert queries_of_lookup(user, "12345678", totp_code=True)[0] is not None
    assert queries_of_lookup(user, "87654321", totp_code=True) == (None, 1)


def test_text_is_an_invalid_format_for_a_user_without_imported_codes(auth_client, totp_device):
    response = post_token(auth_client, VALIDATE, "backup-2024")

    assert_error(response, 400, "invalid_format", "token")
    totp_device.refresh_from_db()
    assert totp_device.failure_count == 0


def test_text_is_a_counted_guess_for_a_user_holding_codes_of_that_form(
    auth_client, user, totp_device
):
    hold(user, DJANGO_OTP, "abcd2345")

    response = post_token(auth_client, VALIDATE, "backup-2024")

    assert_error(response, 400, "invalid_token", "token")
    totp_device.refresh_from_db()
    assert totp_device.failure_count == 1


def test_imported_and_own_codes_live_side_by_side(auth_client, user, totp_device, recovery_codes):
    hold(user, DJANGO_OTP, "abcd2345")

    assert post_token(auth_client, VALIDATE, "ABCD2345").status_code == 200
    assert post_token(auth_client, VALIDATE, recovery_codes[0]).status_code == 200
    assert auth_client.get("/auth/otp/status/").json()["recovery_codes_remaining"] == 9


def test_an_imported_code_is_not_accepted_where_recovery_codes_are_not(
    auth_client, user, totp_device
):
    hold(user, DJANGO_OTP, "abcd2345")

    response = post(auth_client, "/auth/otp/recovery-codes/", {"token": "abcd2345"})

    assert_error(response, 400, "invalid_format", "token")
    assert RecoveryCode.objects.get(user=user).used_at is None


def test_one_users_imported_code_does_not_work_for_another(
    auth_client, other_user, make_device, totp_device
):
    make_device(other_user)
    hold(other_user, DJANGO_OTP, "abcd2345")

    assert_error(post_token(auth_client, VALIDATE, "abcd2345"), 400, "invalid_format", "token")


CONCURRENCY = 16


@pytest.mark.django_db(transaction=True)
def test_sixteen_validates_with_one_imported_code_succeed_once(
    user, make_device, unthrottled, in_threads
):
    make_device(user, digits=8)
    hold(user, "allauth", "12345678")

    def send(client, i):
        client.force_authenticate(user)
        return post_token(client, VALIDATE, "12345678")

    results = in_threads(CONCURRENCY, send)

    outcomes = [getattr(r, "status_code", None) or repr(r) for r in results]
    assert outcomes.count(200) == 1, outcomes
    # The others: already used, or locked for a moment by the guesses still in flight.
    assert {r.json()["code"] for r in results if r.status_code != 200} <= {
        "token_reused",
        "locked",
    }, outcomes
    assert recovery.unused(user.pk).count() == 0
    assert TOTPDevice.objects.get().failure_count == 0
