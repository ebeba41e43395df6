"""Issue #3, items 3 and 4: parallel requests, each thread on its own database connection.

The same valid code sent by 16 threads at once is accepted exactly once (validate, disable,
verify); the others are told the code was used, or, since each request in flight holds a
reserved guess (lockout.py) and the 5th one sets a lock, ``locked``; afterwards nothing stays
counted. 20 parallel wrong codes are counted exactly; 200 wrong codes sent the moment a lock ends
get one evaluation, as if sent one at a time (tests/test_parallel_budget.py: every endpoint). On SQLite the threads share the test database file
and run in Django's default transaction mode, whatever tests/settings.py chooses.

Time is frozen (process-wide, so every thread sees the same instant): all codes fall in one step.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from drf_totp.models import RecoveryCode
from tests.code_checks import (
    DISABLE,
    VALIDATE,
    VERIFY,
    assert_error,
    current_code,
    post_token,
    reload,
    wrong_code,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("clock", "no_throttles"),
]

# PostgreSQL allows 100 connections; every thread holds one.
THREADS = 16


@pytest.fixture(params=[False, True], ids=["autocommit", "ATOMIC_REQUESTS"])
def atomic_requests(request):
    """Both ways Django runs a request; read per request from the connection's settings dict."""
    settings_dict = connection.settings_dict
    saved = settings_dict["ATOMIC_REQUESTS"]
    settings_dict["ATOMIC_REQUESTS"] = request.param
    yield request.param
    settings_dict["ATOMIC_REQUESTS"] = saved


def together(threads: int, work) -> list:
    """Run ``work(client)`` in ``threads`` threads released at once by a barrier; each thread has
    its own client and database connection. Returns what each returned, or the exception it
    raised (the test client re-raises a view's exception: what would have been a 500)."""
    barrier = threading.Barrier(threads, timeout=60)
    results: list = [None] * threads

    def run(index: int) -> None:
        try:
            connection.ensure_connection()
            barrier.wait()
            results[index] = work(APIClient())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            results[index] = exc
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert not any(worker.is_alive() for worker in workers), "a thread hung"
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"requests raised (500): {errors!r}"
    return results


def answers_of(user, url: str, token: str, requests: int = 1):
    """``work`` for ``together``: send ``requests`` codes as ``user``; (status, code) of each."""

    def work(client: APIClient) -> list[tuple[int, str | None]]:
        client.force_authenticate(user=user)
        answers = []
        for _ in range(requests):
            response = post_token(client, url, token)
            body = response.json()
            answers.append((response.status_code, body.get("code")))
        return answers

    return work


def flat(results: list) -> list[tuple[int, str | None]]:
    return [answer for answers in results for answer in answers]


def assert_one_success(answers, refusals: set[str]) -> None:
    statuses = Counter(status for status, _ in answers)
    assert statuses[200] == 1, answers
    assert all(400 <= status < 500 for status, _ in answers if status != 200), answers
    assert {code for status, code in answers if status != 200} <= refusals, answers


def test_same_valid_code_from_16_threads_is_accepted_once_by_validate(
    user, make_device, atomic_requests
):
    device = make_device(user)
    code = current_code(device)

    answers = flat(together(THREADS, answers_of(user, VALIDATE, code)))

    assert_one_success(answers, {"token_reused", "locked"})
    after = reload(device)
    assert (after.use_count, after.failure_count, after.locked_until) == (1, 0, None)


def test_same_valid_code_from_16_threads_disables_once(user, make_device, atomic_requests):
    device = make_device(user)
    code = current_code(device)

    answers = flat(together(THREADS, answers_of(user, DISABLE, code)))

    assert_one_success(answers, {"not_enabled", "token_reused", "locked"})
    assert reload(device) is None


def test_same_valid_code_from_16_threads_confirms_enrollment_once(user, make_device):
    device = make_device(user, confirmed=False)
    code = current_code(device)

    answers = flat(together(THREADS, answers_of(user, VERIFY, code)))

    assert_one_success(answers, {"already_enabled", "token_reused", "locked"})
    after = reload(device)
    assert after.is_confirmed and after.use_count == 1
    assert RecoveryCode.objects.filter(user=user).count() == 10


def test_20_parallel_wrong_codes_are_counted_exactly(user, make_device, atomic_requests):
    """With the defaults 5 failures are charged (the 5th locks) and the other 15 refused."""
    device = make_device(user)

    answers = flat(together(20, answers_of(user, VALIDATE, wrong_code(device))))

    assert Counter(answers) == {(400, "invalid_token"): 5, (429, "locked"): 15}
    after = reload(device)
    assert after.failure_count == 5
    assert (after.locked_until - timezone.now()).total_seconds() == 30


def test_burst_of_200_wrong_codes_when_a_lock_ends_gets_one_evaluation(
    user, make_device, auth_client, clock
):
    device = make_device(user)
    for _ in range(5):
        assert_error(post_token(auth_client, VALIDATE, wrong_code(device)), 400, "invalid_token")
    clock.move_to(reload(device).locked_until, tick=False)  # the lock's last instant has passed

    answers = flat(together(20, answers_of(user, VALIDATE, wrong_code(device), requests=10)))

    assert len(answers) == 200
    assert Counter(answers) == {(400, "invalid_token"): 1, (429, "locked"): 199}
    after = reload(device)
    assert after.failure_count == 6
    assert (after.locked_until - timezone.now()).total_seconds() == 60
