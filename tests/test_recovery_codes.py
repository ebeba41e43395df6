"""Recovery codes: issued with the device, regenerated with a TOTP code, each usable once.

A code has at least 80 bits, is shown in groups from an alphabet without look-alikes, and is
accepted whatever its case, spaces and dashes. Only a keyed hash is stored. It works at
/validate/, /login/verify/ and /disable/; a wrong one counts toward the lock, and a right one
lifts the lock held after too many TOTP failures.
"""

from __future__ import annotations

import hashlib
import math
import re

import pytest
from django.db import connection
from django.utils import timezone

from drf_totp import recovery
from drf_totp.models import RecoveryCode, TOTPDevice
from tests.code_checks import (
    DISABLE,
    GENERATE,
    LOGIN,
    LOGIN_VERIFY,
    RECOVERY_CODES,
    STATUS,
    VALIDATE,
    VERIFY,
    assert_refused,
    post,
    wrong,
)

AMBIGUOUS = set("01OIL")
SHOWN = re.compile(r"[^-]{5}-[^-]{5}-[^-]{5}-[^-]{5}")

pytestmark = pytest.mark.usefixtures("clock")


def another_valid_looking_code(codes: list[str]) -> str:
    """A well-formed recovery code that is not one of ``codes``."""
    while True:
        _, shown = recovery.generate()
        if shown not in codes:
            return shown


def remaining(client) -> int:
    return client.get(STATUS).json()["recovery_codes_remaining"]


@pytest.fixture
def enrolled(auth_client, user, authenticator):
    """alice enrolls through the API; the verify response (with her recovery codes)."""
    url = post(auth_client, GENERATE, {}).json()["otpauth_url"]
    response = post(auth_client, VERIFY, {"token": authenticator(url)})
    assert response.status_code == 200, response.content
    response.otpauth_url = url
    return response


# --- issued with the device -------------------------------------------------------------------------


def test_confirming_the_device_issues_recovery_codes_once_and_uncached(enrolled, auth_client):
    codes = enrolled.json()["recovery_codes"]

    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert "no-store" in enrolled["Cache-Control"]
    assert remaining(auth_client) == 10
    # Shown once: nothing else hands them out again.
    assert "recovery_codes" not in auth_client.get(STATUS).json()


def test_the_number_of_codes_follows_the_setting(auth_client, user, authenticator, settings):
    settings.TOTP_RECOVERY_CODES_COUNT = 12
    url = post(auth_client, GENERATE, {}).json()["otpauth_url"]

    response = post(auth_client, VERIFY, {"token": authenticator(url)})

    assert len(response.json()["recovery_codes"]) == 12


def test_codes_are_grouped_from_an_alphabet_without_look_alikes(enrolled):
    for code in enrolled.json()["recovery_codes"]:
        assert SHOWN.fullmatch(code), code
        assert set(code.replace("-", "")) <= set(recovery.ALPHABET)
        assert not AMBIGUOUS & set(code)


def test_codes_carry_at_least_80_bits():
    assert not AMBIGUOUS & set(recovery.ALPHABET)
    assert len(set(recovery.ALPHABET)) == len(recovery.ALPHABET)
    length = recovery.GROUPS * recovery.GROUP_LENGTH

    assert len(recovery.ALPHABET) ** length >= 2**80
    assert length * math.log2(len(recovery.ALPHABET)) >= 80


def test_generated_codes_use_the_whole_alphabet():
    # 200 codes x 20 symbols: every one of the 30 symbols turns up (chance of a miss ~ 1e-50).
    seen = set("".join(recovery.generate()[0] for _ in range(200)))

    assert seen == set(recovery.ALPHABET)


# --- typed as people type -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "retype",
    [
        pytest.param(lambda c: c, id="as shown"),
        pytest.param(str.lower, id="lowercase"),
        pytest.param(lambda c: c.replace("-", ""), id="no dashes"),
        pytest.param(lambda c: c.replace("-", " "), id="spaces"),
        pytest.param(lambda c: " " + c.lower().replace("-", " - ") + " ", id="loose spaces"),
        pytest.param(lambda c: c[:2] + "-" + c[2:].replace("-", "").lower(), id="dashes moved"),
    ],
)
def test_case_spaces_and_dashes_are_ignored(auth_client, recovery_codes, retype):
    response = post(auth_client, VALIDATE, {"token": retype(recovery_codes[0])})

    assert response.status_code == 200, response.content
    assert remaining(auth_client) == 9


@pytest.mark.parametrize(
    "retype",
    [
        pytest.param(lambda c: c.replace("-", "")[:-1], id="too short"),
        pytest.param(lambda c: c + "A", id="too long"),
        pytest.param(lambda c: c.replace("-", "_"), id="underscores"),
        pytest.param(lambda c: "O" + c[1:], id="look-alike letter"),
    ],
)
def test_something_that_is_not_a_code_is_invalid_format_and_not_counted(
    auth_client, recovery_codes, totp_device, retype
):
    response = post(auth_client, VALIDATE, {"token": retype(recovery_codes[0])})

    assert_refused(response, 400, "invalid_format", "token")
    totp_device.refresh_from_db()
    assert totp_device.failure_count == 0
    assert remaining(auth_client) == 10


# --- stored as keyed hashes only ----------------------------------------------------------------------


def every_stored_value() -> str:
    """Every value of every row of every table, as one string."""
    out = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            out.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(out)


def test_no_code_is_stored_in_any_form_people_type(enrolled, auth_client):
    codes = enrolled.json()["recovery_codes"]
    post(auth_client, VALIDATE, {"token": codes[0]})  # a used code too
    stored = every_stored_value().upper()

    for shown in codes:
        bare = shown.replace("-", "")
        for form in (shown, bare, bare.lower()):
            assert form.upper() not in stored
        # Nor a bare, unkeyed hash of it.
        for hashed in (hashlib.sha256(bare.encode()), hashlib.sha256(shown.encode())):
            assert hashed.hexdigest().upper() not in stored


def test_the_stored_digest_is_keyed_with_the_secret_key(user, recovery_codes, settings):
    bare = recovery_codes[0].replace("-", "")
    digest = recovery.digests(bare)[0]
    assert RecoveryCode.objects.filter(user=user, digest=digest).exists()

    settings.SECRET_KEY = "another secret key, another digest " * 2

    assert recovery.digests(bare)[0] != digest


def test_codes_survive_a_secret_key_rotation_through_the_fallbacks(
    auth_client, recovery_codes, settings
):
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "the new secret key of the project, rotated " * 2
    settings.SECRET_KEY_FALLBACKS = [old]

    assert post(auth_client, VALIDATE, {"token": recovery_codes[0]}).status_code == 200


# --- single use ---------------------------------------------------------------------------------------


def test_a_recovery_code_works_once(auth_client, recovery_codes, totp_device):
    assert post(auth_client, VALIDATE, {"token": recovery_codes[0]}).status_code == 200

    again = post(auth_client, VALIDATE, {"token": recovery_codes[0].lower()})

    assert_refused(again, 400, "token_reused", "token")
    assert remaining(auth_client) == 9
    totp_device.refresh_from_db()
    assert totp_device.failure_count == 0


def test_a_code_used_at_validate_is_refused_at_login(
    api_client, auth_client, password, recovery_codes
):
    assert post(auth_client, VALIDATE, {"token": recovery_codes[0]}).status_code == 200
    ticket = post(api_client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]

    response = post(api_client, LOGIN_VERIFY, {"ticket": ticket, "token": recovery_codes[0]})

    assert_refused(response, 400, "token_reused", "token")


def test_a_code_used_at_login_is_refused_at_disable(
    api_client, auth_client, password, recovery_codes
):
    ticket = post(api_client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]
    assert (
        post(api_client, LOGIN_VERIFY, {"ticket": ticket, "token": recovery_codes[0]}).status_code
        == 200
    )

    assert_refused(post(auth_client, DISABLE, {"token": recovery_codes[0]}), 400, "token_reused")
    assert TOTPDevice.objects.exists()


def test_using_one_code_leaves_the_others_usable(auth_client, recovery_codes, unthrottled):
    for n, code in enumerate(recovery_codes, start=1):
        assert post(auth_client, VALIDATE, {"token": code}).status_code == 200
        assert remaining(auth_client) == len(recovery_codes) - n


def test_one_users_code_does_not_work_for_another(
    auth_client, other_user, make_device, recovery_codes
):
    make_device(other_user)
    bobs_codes = recovery.issue(other_user, timezone.now())

    assert_refused(post(auth_client, VALIDATE, {"token": bobs_codes[0]}), 400, "invalid_token")
    assert recovery.unused(other_user.pk).count() == 10


CONCURRENCY = 16


def assert_one_success(results, refusals: set[tuple[int, str]]) -> None:
    """One 200; every other answer says what happened: the code was used by the winner (or
    its ticket died with the winner's login), or the guesses in flight hold a lock. While
    requests are in flight each holds a reserved guess (lockout.py), so a burst past the free
    failures is answered ``locked``; the reservations of right codes are released afterwards."""
    outcomes = [
        (r.status_code, r.json().get("code")) if hasattr(r, "status_code") else repr(r)
        for r in results
    ]
    assert outcomes.count((200, None)) == 1, outcomes
    assert set(outcomes) - {(200, None)} <= refusals, outcomes


@pytest.mark.django_db(transaction=True)
def test_sixteen_validates_with_one_code_succeed_once(
    user, recovery_codes, unthrottled, in_threads
):
    def send(client, i):
        client.force_authenticate(user)
        return post(client, VALIDATE, {"token": recovery_codes[0]})

    results = in_threads(CONCURRENCY, send)

    assert_one_success(results, {(400, "token_reused"), (429, "locked")})
    assert recovery.unused(user.pk).count() == 9
    assert TOTPDevice.objects.get().failure_count == 0


@pytest.mark.django_db(transaction=True)
def test_sixteen_logins_with_one_code_succeed_once(
    api_client, user, password, recovery_codes, unthrottled, in_threads
):
    tickets = [
        post(api_client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]
        for _ in range(CONCURRENCY)
    ]

    results = in_threads(
        CONCURRENCY,
        lambda client, i: post(
            client, LOGIN_VERIFY, {"ticket": tickets[i], "token": recovery_codes[0]}
        ),
    )

    # The tickets all die with the first login; the code, used once, is refused as such.
    refusals = {(400, "token_reused"), (400, "invalid_ticket"), (429, "locked")}
    assert_one_success(results, refusals)
    assert recovery.unused(user.pk).count() == 9
    assert (TOTPDevice.objects.get().use_count, TOTPDevice.objects.get().failure_count) == (1, 0)


# --- regenerate ----------------------------------------------------------------------------------------


def test_regenerating_with_a_totp_code_replaces_the_whole_set(
    auth_client, totp_device, recovery_codes, authenticator
):
    response = post(auth_client, RECOVERY_CODES, {"token": authenticator(totp_device)})

    assert response.status_code == 200, response.content
    new = response.json()["recovery_codes"]
    assert set(response.json()) == {"recovery_codes"}
    assert len(new) == 10 and not set(new) & set(recovery_codes)
    assert all(SHOWN.fullmatch(code) for code in new)
    assert "no-store" in response["Cache-Control"]
    assert remaining(auth_client) == 10
    assert RecoveryCode.objects.filter(user=totp_device.user).count() == 10


def test_the_old_set_is_dead_after_regenerating(
    auth_client, totp_device, recovery_codes, authenticator
):
    new = post(auth_client, RECOVERY_CODES, {"token": authenticator(totp_device)}).json()[
        "recovery_codes"
    ]

    old = post(auth_client, VALIDATE, {"token": recovery_codes[1]})

    assert_refused(old, 400, "invalid_token", "token")
    assert post(auth_client, VALIDATE, {"token": new[0]}).status_code == 200


def test_regenerating_restores_the_count_after_codes_were_used(
    auth_client, totp_device, recovery_codes, authenticator, clock
):
    for code in recovery_codes[:3]:
        assert post(auth_client, VALIDATE, {"token": code}).status_code == 200
    assert remaining(auth_client) == 7

    assert (
        post(auth_client, RECOVERY_CODES, {"token": authenticator(totp_device)}).status_code == 200
    )

    assert remaining(auth_client) == 10


def test_regenerating_refuses_a_recovery_code(auth_client, totp_device, recovery_codes):
    response = post(auth_client, RECOVERY_CODES, {"token": recovery_codes[0]})

    assert_refused(response, 400, "invalid_format", "token")
    assert remaining(auth_client) == 10  # the code was not spent, the set not replaced
    assert post(auth_client, VALIDATE, {"token": recovery_codes[0]}).status_code == 200


def test_regenerating_with_a_wrong_code_keeps_the_set_and_counts(
    auth_client, totp_device, recovery_codes, authenticator
):
    response = post(auth_client, RECOVERY_CODES, {"token": wrong(authenticator(totp_device))})

    assert_refused(response, 400, "invalid_token", "token")
    totp_device.refresh_from_db()
    assert totp_device.failure_count == 1
    assert post(auth_client, VALIDATE, {"token": recovery_codes[0]}).status_code == 200


def test_regenerating_replays_no_totp_code(auth_client, totp_device, recovery_codes, authenticator):
    code = authenticator(totp_device)
    assert post(auth_client, VALIDATE, {"token": code}).status_code == 200

    assert_refused(post(auth_client, RECOVERY_CODES, {"token": code}), 400, "token_reused")
    assert post(auth_client, VALIDATE, {"token": recovery_codes[0]}).status_code == 200


def test_regenerating_without_2fa_is_not_enabled(auth_client, user):
    assert_refused(post(auth_client, RECOVERY_CODES, {"token": "123456"}), 409, "not_enabled")


def test_regenerating_needs_a_login(api_client, totp_device, authenticator):
    response = post(api_client, RECOVERY_CODES, {"token": authenticator(totp_device)})

    assert response.status_code in (401, 403)


# --- status ------------------------------------------------------------------------------------------------


def test_status_counts_the_unused_codes(auth_client, recovery_codes):
    assert remaining(auth_client) == 10
    post(auth_client, VALIDATE, {"token": recovery_codes[4]})

    assert remaining(auth_client) == 9


def test_status_counts_no_codes_without_2fa(auth_client, user):
    assert remaining(auth_client) == 0


def test_status_counts_only_the_users_own_codes(
    auth_client, other_user, make_device, recovery_codes
):
    make_device(other_user)
    recovery.issue(other_user, timezone.now())

    assert remaining(auth_client) == 10


# --- the lock ------------------------------------------------------------------------------------------------


def test_a_wrong_recovery_code_counts_toward_the_lock(auth_client, totp_device, recovery_codes):
    guess = another_valid_looking_code(recovery_codes)

    response = post(auth_client, VALIDATE, {"token": guess})

    assert_refused(response, 400, "invalid_token", "token")
    totp_device.refresh_from_db()
    assert totp_device.failure_count == 1


def test_wrong_recovery_codes_lock_like_wrong_totp_codes(
    auth_client, totp_device, recovery_codes, authenticator, settings, unthrottled
):
    settings.TOTP_FREE_FAILURES = 4
    for _ in range(5):
        guess = another_valid_looking_code(recovery_codes)
        assert post(auth_client, VALIDATE, {"token": guess}).status_code == 400

    locked = post(auth_client, VALIDATE, {"token": authenticator(totp_device)})
    also_locked = post(auth_client, VALIDATE, {"token": recovery_codes[0]})

    assert_refused(locked, 429, "locked")
    assert_refused(also_locked, 429, "locked")
    assert remaining(auth_client) == 10  # refused before evaluation: the code is not spent
    totp_device.refresh_from_db()
    assert totp_device.failure_count == 5


def test_wrong_recovery_codes_at_login_count_toward_the_same_lock(
    api_client, password, totp_device, recovery_codes
):
    ticket = post(api_client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]

    response = post(
        api_client,
        LOGIN_VERIFY,
        {"ticket": ticket, "token": another_valid_looking_code(recovery_codes)},
    )

    assert_refused(response, 400, "invalid_token")
    totp_device.refresh_from_db()
    assert totp_device.failure_count == 1


@pytest.fixture
def locked_out(totp_device):
    """alice past the failure limit (100 consecutive failures), no time lock running."""
    TOTPDevice.objects.filter(pk=totp_device.pk).update(failure_count=100, locked_until=None)
    return totp_device


def test_after_100_failures_totp_is_refused_until_a_recovery_code(
    auth_client, locked_out, recovery_codes, authenticator, clock
):
    refused = post(auth_client, VALIDATE, {"token": authenticator(locked_out)})
    assert_refused(refused, 403, "locked_out")
    assert auth_client.get(STATUS).json()["locked_out"] is True

    lifted = post(auth_client, VALIDATE, {"token": recovery_codes[0]})

    assert lifted.status_code == 200, lifted.content
    locked_out.refresh_from_db()
    assert (locked_out.failure_count, locked_out.locked_until) == (0, None)
    assert auth_client.get(STATUS).json()["locked_out"] is False
    clock.shift(30)
    assert post(auth_client, VALIDATE, {"token": authenticator(locked_out)}).status_code == 200


def test_a_recovery_code_at_login_lifts_the_100_failure_lock(
    api_client, auth_client, password, locked_out, recovery_codes, authenticator, clock
):
    ticket = post(api_client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]
    assert_refused(
        post(api_client, LOGIN_VERIFY, {"ticket": ticket, "token": authenticator(locked_out)}),
        403,
        "locked_out",
    )

    response = post(api_client, LOGIN_VERIFY, {"ticket": ticket, "token": recovery_codes[0]})

    assert response.status_code == 200, response.content
    clock.shift(30)
    assert post(auth_client, VALIDATE, {"token": authenticator(locked_out)}).status_code == 200


def test_a_wrong_recovery_code_does_not_lift_the_100_failure_lock(
    auth_client, locked_out, recovery_codes, authenticator
):
    guess = another_valid_looking_code(recovery_codes)
    assert_refused(post(auth_client, VALIDATE, {"token": guess}), 400, "invalid_token")

    refused = post(auth_client, VALIDATE, {"token": authenticator(locked_out)})

    assert refused.status_code in (403, 429), refused.content  # locked out, and now also locked
    locked_out.refresh_from_db()
    assert locked_out.failure_count == 101
