"""Issue #3, item 4: the guess limit, kept per user in the database.

With the defaults, failures 1-4 lock nothing; the 5th consecutive failure locks for 30 s, each
further one doubles the lock up to 1 h. While locked, codes get 429 (``locked``, Retry-After) and
are not evaluated. After 100 consecutive failures TOTP codes get 403 ``locked_out`` until a
recovery code or an administrator lifts it. A success resets the count. Failures stay counted
when the request's transaction is rolled back (``ATOMIC_REQUESTS``).

Time is frozen and moved by exactly what the server asks for.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from drf_totp import devices, exceptions, recovery, verification
from drf_totp.models import TOTPDevice
from tests.code_checks import (
    DISABLE,
    LOGIN_VERIFY,
    RECOVERY_CODES,
    STATUS,
    VALIDATE,
    VERIFY,
    assert_error,
    current_code,
    post_token,
    reload,
    start_login,
    wrong_code,
)

pytestmark = pytest.mark.usefixtures("clock", "no_throttles")

DAY = 24 * 3600

# The schedule issue #3 states for the defaults, written out independently of lockout.py.
FREE_FAILURES = 4
FIRST_LOCK, LONGEST_LOCK = 30, 3600
MAX_FAILURES = 100


def lock_for(failures: int) -> int:
    """Seconds of lock the ``failures``-th consecutive failure earns, per the issue."""
    if failures <= FREE_FAILURES:
        return 0
    return min(FIRST_LOCK * 2 ** (failures - FREE_FAILURES - 1), LONGEST_LOCK)


def guesses_in(seconds: int) -> int:
    """Guesses evaluated in ``seconds`` by one who guesses again the moment each lock ends."""
    elapsed, guesses = 0, 0
    while elapsed < seconds and guesses < MAX_FAILURES:
        guesses += 1
        elapsed += lock_for(guesses)
    return guesses


@pytest.fixture
def device(user, make_device):
    return make_device(user)


def guess(client, device):
    """One wrong code, as an attacker sends it: 400 if it was evaluated, else the refusal."""
    return post_token(client, VALIDATE, wrong_code(device))


def fail(client, device, times: int = 1) -> None:
    for _ in range(times):
        assert_error(guess(client, device), 400, "invalid_token", field="token")


def seconds_locked(device) -> float:
    locked_until = reload(device).locked_until
    return 0 if locked_until is None else (locked_until - timezone.now()).total_seconds()


def retry_after(response) -> int:
    assert_error(response, 429, "locked")
    return int(response["Retry-After"])


def test_the_free_failures_lock_nothing_and_the_next_one_locks_for_30_seconds(auth_client, device):
    fail(auth_client, device, 4)
    assert (reload(device).failure_count, reload(device).locked_until) == (4, None)

    fail(auth_client, device)

    assert reload(device).failure_count == 5
    assert seconds_locked(device) == 30


def test_each_further_failure_doubles_the_lock_up_to_one_hour(auth_client, device, clock):
    locks = []
    for _ in range(14):
        fail(auth_client, device)
        locks.append(seconds_locked(device))
        clock.shift(locks[-1])

    assert locks == [0, 0, 0, 0, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


@pytest.mark.parametrize(
    "free,first,longest",
    [(0, 30, 3600), (2, 45, 600), (4, 30, 30), (3, 60, 30)],
    ids=["no free failures", "cap not a doubling", "cap is the first lock", "cap below first"],
)
def test_lock_durations_follow_the_settings(
    auth_client, device, clock, settings, free, first, longest
):
    settings.TOTP_FREE_FAILURES = free
    settings.TOTP_LOCKOUT_SECONDS = first
    settings.TOTP_LOCKOUT_MAX_SECONDS = longest
    expected = [0 if n <= free else min(first * 2 ** (n - free - 1), longest) for n in range(1, 14)]
    locks = []
    for _ in expected:
        fail(auth_client, device)
        locks.append(seconds_locked(device))
        clock.shift(locks[-1])

    assert locks == expected


def test_locked_user_gets_429_with_retry_after_and_code_locked(auth_client, device, clock):
    fail(auth_client, device, 5)

    first = post_token(auth_client, VALIDATE, wrong_code(device))
    clock.shift(12.5)
    later = post_token(auth_client, VALIDATE, wrong_code(device))

    assert retry_after(first) == 30
    assert first.json()["retry_after"] == 30
    assert retry_after(later) == 18  # 17.5 s left, rounded up: never too early
    assert reload(device).failure_count == 5


def test_right_code_during_a_lock_is_refused_without_being_evaluated(
    auth_client, device, monkeypatch
):
    fail(auth_client, device, 5)
    evaluated = []
    real = verification.otp.matching_step
    monkeypatch.setattr(
        verification.otp, "matching_step", lambda *a, **k: evaluated.append(a) or real(*a, **k)
    )

    response = post_token(auth_client, VALIDATE, current_code(device))

    assert retry_after(response) == 30
    assert evaluated == []
    after = reload(device)
    assert (after.failure_count, after.last_used_step, after.use_count) == (5, 0, 0)


def test_wrong_codes_during_a_lock_do_not_grow_the_count_or_the_lock(auth_client, device):
    fail(auth_client, device, 5)
    locked_until = reload(device).locked_until

    for _ in range(20):
        assert retry_after(guess(auth_client, device)) == 30

    after = reload(device)
    assert (after.failure_count, after.locked_until) == (5, locked_until)


def test_user_who_waits_out_the_lock_gets_in_with_a_right_code(auth_client, device, clock):
    fail(auth_client, device, 5)
    clock.shift(30)
    fail(auth_client, device)  # the 6th failure locks for 60 s
    wait = retry_after(post_token(auth_client, VALIDATE, current_code(device)))
    assert wait == 60
    clock.shift(wait)

    response = post_token(auth_client, VALIDATE, current_code(device))

    assert response.status_code == 200, response.content
    after = reload(device)
    assert (after.failure_count, after.locked_until) == (0, None)


def test_right_code_refused_during_the_lock_still_works_once_it_ends(auth_client, device, clock):
    """A refused code was not consumed: the same code, still in the window, is accepted later."""
    fail(auth_client, device, 5)
    code = current_code(device)
    clock.shift(retry_after(post_token(auth_client, VALIDATE, code)))

    assert post_token(auth_client, VALIDATE, code).status_code == 200


def test_success_resets_the_count_of_consecutive_failures(auth_client, device, clock):
    fail(auth_client, device, 4)
    assert post_token(auth_client, VALIDATE, current_code(device)).status_code == 200
    assert reload(device).failure_count == 0
    clock.shift(30)

    fail(auth_client, device, 4)  # four more are free again: no lock

    assert (reload(device).failure_count, reload(device).locked_until) == (4, None)
    assert post_token(auth_client, VALIDATE, current_code(device)).status_code == 200


def test_an_attacker_who_waits_as_told_gets_at_most_100_guesses_a_day(auth_client, device, clock):
    expected = guesses_in(DAY)
    assert expected == 34  # 12 in the first 3810 s, then one an hour
    assert expected <= 100
    end = timezone.now() + timedelta(seconds=DAY)
    evaluated, waited = 0, False

    while timezone.now() < end:
        response = guess(auth_client, device)
        if response.status_code == 400:
            assert_error(response, 400, "invalid_token")
            evaluated, waited = evaluated + 1, False
        else:
            assert not waited, "refused again after waiting exactly the Retry-After it was given"
            clock.shift(retry_after(response))
            waited = True

    assert evaluated == expected
    assert reload(device).failure_count == expected


def walk_to_max_failures(client, device, clock) -> None:
    """Guess wrong, waiting out each lock as told, until the 100th failure is counted."""
    evaluated = 0
    while evaluated < MAX_FAILURES:
        response = guess(client, device)
        if response.status_code == 400:
            evaluated += 1
        else:
            clock.shift(retry_after(response))
    assert reload(device).failure_count == MAX_FAILURES


def test_after_100_failures_totp_codes_stay_refused_with_403_locked_out(auth_client, device, clock):
    walk_to_max_failures(auth_client, device, clock)

    for wait in (3600, DAY, 365 * DAY):
        clock.shift(wait)
        right = post_token(auth_client, VALIDATE, current_code(device))
        wrong = guess(auth_client, device)

        assert_error(right, 403, "locked_out")
        assert_error(wrong, 403, "locked_out")
    assert reload(device).failure_count == MAX_FAILURES
    assert reload(device).use_count == 0
    assert auth_client.get(STATUS).json()["locked_out"] is True


def test_the_100th_failure_answers_403_locked_out_at_once_not_a_429_to_retry_later(
    auth_client, device
):
    """A 429 with Retry-After would tell the user to come back in an hour for nothing."""
    TOTPDevice.objects.filter(pk=device.pk).update(failure_count=MAX_FAILURES - 1)

    fail(auth_client, device)  # the 100th
    right = post_token(auth_client, VALIDATE, current_code(device))

    assert_error(right, 403, "locked_out")
    assert "Retry-After" not in right


def test_a_recovery_code_lifts_the_lock_out(auth_client, user, device, clock):
    """The user proves themselves another way: TOTP codes work again afterwards."""
    [code, *_] = recovery.issue(user, timezone.now())
    walk_to_max_failures(auth_client, device, clock)
    clock.shift(3600)  # the lock of the 100th failure

    assert post_token(auth_client, VALIDATE, code).status_code == 200
    clock.shift(30)
    assert post_token(auth_client, VALIDATE, current_code(device)).status_code == 200


def test_an_administrator_unlock_lifts_the_lock_out(auth_client, user, device, clock):
    walk_to_max_failures(auth_client, device, clock)

    assert devices.unlock(user) is True

    assert post_token(auth_client, VALIDATE, current_code(device)).status_code == 200


def test_wrong_codes_on_every_endpoint_count_toward_one_lock(auth_client, user, password, device):
    """The count is kept on the user's device, whichever endpoint a wrong code came to."""
    for url in (VALIDATE, DISABLE, RECOVERY_CODES, VALIDATE):
        assert_error(post_token(auth_client, url, wrong_code(device)), 400, "invalid_token")
    client = APIClient()
    ticket = start_login(client, user, password)

    response = client.post(
        LOGIN_VERIFY, {"ticket": ticket, "token": wrong_code(device)}, format="json"
    )

    assert_error(response, 400, "invalid_token")
    assert reload(device).failure_count == 5
    assert seconds_locked(device) == 30


@pytest.mark.parametrize("endpoint", ["disable", "recovery-codes", "login"])
def test_a_lock_holds_on_every_endpoint(auth_client, user, password, device, endpoint):
    fail(auth_client, device, 5)

    if endpoint == "login":
        client = APIClient()
        body = {"ticket": start_login(client, user, password), "token": current_code(device)}
        response = client.post(LOGIN_VERIFY, body, format="json")
    else:
        url = DISABLE if endpoint == "disable" else RECOVERY_CODES
        response = post_token(auth_client, url, current_code(device))

    assert retry_after(response) == 30
    after = reload(device)
    assert after is not None
    assert (after.failure_count, after.use_count) == (5, 0)


def test_wrong_codes_for_a_pending_device_lock_its_confirmation(auth_client, user, make_device):
    pending = make_device(user, confirmed=False)
    for _ in range(5):
        assert_error(post_token(auth_client, VERIFY, wrong_code(pending)), 400, "invalid_token")

    response = post_token(auth_client, VERIFY, current_code(pending))

    assert retry_after(response) == 30
    assert not reload(pending).is_confirmed


def test_check_that_read_the_device_before_it_was_locked_is_refused_by_the_lock(
    auth_client, device
):
    """Parallel requests that loaded the device unlocked cannot slip past a lock set meanwhile."""
    stale = TOTPDevice.objects.get(pk=device.pk)
    fail(auth_client, device, 5)

    with pytest.raises(exceptions.Locked):
        verification.check(stale, wrong_code(device))
    with pytest.raises(exceptions.Locked):
        verification.check(stale, current_code(device))

    after = reload(device)
    assert (after.failure_count, after.last_used_step) == (5, 0)


@pytest.fixture
def atomic_requests():
    """``ATOMIC_REQUESTS = True`` for this test: Django reads it per request from the settings
    dict of the connection."""
    settings_dict = connection.settings_dict
    saved = settings_dict["ATOMIC_REQUESTS"]
    settings_dict["ATOMIC_REQUESTS"] = True
    yield
    settings_dict["ATOMIC_REQUESTS"] = saved


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("atomic_requests")
def test_failures_stay_counted_when_the_request_transaction_rolls_back(auth_client, device, clock):
    fail(auth_client, device, 5)

    assert reload(device).failure_count == 5
    assert retry_after(post_token(auth_client, VALIDATE, current_code(device))) == 30
    clock.shift(30)
    assert post_token(auth_client, VALIDATE, current_code(device)).status_code == 200
    assert reload(device).failure_count == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("atomic_requests")
@pytest.mark.parametrize("endpoint", ["verify", "disable", "recovery-codes", "login"])
def test_failures_on_every_endpoint_stay_counted_under_atomic_requests(
    auth_client, user, password, make_device, endpoint
):
    device = make_device(user, confirmed=endpoint != "verify")
    client = APIClient()
    ticket = start_login(client, user, password) if endpoint == "login" else None

    if endpoint == "login":
        body = {"ticket": ticket, "token": wrong_code(device)}
        response = client.post(LOGIN_VERIFY, body, format="json")
    else:
        url = {"verify": VERIFY, "disable": DISABLE}.get(endpoint, RECOVERY_CODES)
        response = post_token(auth_client, url, wrong_code(device))

    assert_error(response, 400, "invalid_token")
    assert reload(device).failure_count == 1
