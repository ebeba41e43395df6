"""Issue 11, item 1: the guess budget holds under parallel requests (reserve, then evaluate).

At a lock opening (the lock has just ended), bursts of 20 simultaneous requests, real threads
each on its own database connection, get exactly one code evaluated, as one request at a time
would; and a right code sent while another guess is being evaluated is refused like the 19
wrong ones, not slipped in beside it: it wins no more than its fair share. Every endpoint that
checks a code is covered: verify (the pending device), validate, disable, recovery-codes and
login/verify, with TOTP codes and, where accepted, recovery codes.

Evaluations are counted where a code is computed: ``otp.matching_step`` (a TOTP window) and
``recovery.candidate_digests`` (a recovery code). A wrong code's evaluation is made to take 0.3 s, as a
loaded server may take between reading a row and writing it: a budget that counts a guess only
after evaluating it lets every request that read the row meanwhile through.

Time is frozen (process-wide, so every thread sees the same instant).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.utils import timezone

from drf_totp import otp, recovery
from drf_totp.models import TOTPDevice
from tests.code_checks import (
    DISABLE,
    LOGIN_VERIFY,
    RECOVERY_CODES,
    VALIDATE,
    VERIFY,
    current_code,
    post,
    reload,
    start_login,
    wrong_code,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("clock", "unthrottled"),
]

BURST = 20
SLOW_EVALUATION = 0.3
WRONG_RECOVERY_CODE = "22222-33333-44444-55555"

# (endpoint, kind of code): every endpoint that checks a code, recovery codes where accepted.
CASES = [
    ("verify", "totp"),
    ("validate", "totp"),
    ("validate", "recovery"),
    ("disable", "totp"),
    ("disable", "recovery"),
    ("recovery-codes", "totp"),
    ("login", "totp"),
    ("login", "recovery"),
]
URLS = {
    "verify": VERIFY,
    "validate": VALIDATE,
    "disable": DISABLE,
    "recovery-codes": RECOVERY_CODES,
    "login": LOGIN_VERIFY,
}


class Evaluations:
    """Counts the codes computed; a wrong one takes ``SLOW_EVALUATION`` and sets ``wrong``."""

    def __init__(self, right_recovery: str | None) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.wrong = threading.Event()
        self.right_recovery = right_recovery

    def seen(self, wrong: bool) -> None:
        with self.lock:
            self.count += 1
        if wrong:
            self.wrong.set()
            time.sleep(SLOW_EVALUATION)


@pytest.fixture
def evaluations(monkeypatch, request):
    made: list[Evaluations] = []
    real_step, real_digests = otp.matching_step, recovery.candidate_digests

    def start(right_recovery: str | None) -> Evaluations:
        counter = Evaluations(right_recovery)
        made.append(counter)

        def matching_step(*args, **kwargs):
            step = real_step(*args, **kwargs)
            counter.seen(wrong=step is None)
            return step

        def candidate_digests(readings):
            right = recovery.normalize(counter.right_recovery or "")
            counter.seen(wrong=readings.get(str(recovery.Format.DRF_TOTP)) != right)
            return real_digests(readings)

        monkeypatch.setattr(otp, "matching_step", matching_step)
        monkeypatch.setattr(recovery, "candidate_digests", candidate_digests)
        return counter

    return start


class Case:
    """One endpoint and kind of code: its device, and how to send a code to it."""

    def __init__(self, endpoint: str, kind: str, user, password, make_device) -> None:
        self.endpoint, self.kind, self.user = endpoint, kind, user
        self.device = make_device(user, confirmed=endpoint != "verify")
        self.recovery = recovery.issue(user, timezone.now()) if kind == "recovery" else None
        self.ticket = None
        if endpoint == "login":
            from rest_framework.test import APIClient

            self.ticket = start_login(APIClient(), user, password)

    def right(self) -> str:
        return self.recovery[0] if self.recovery else current_code(self.device)

    def wrong(self) -> str:
        return WRONG_RECOVERY_CODE if self.recovery else wrong_code(self.device)

    def send(self, client, token: str):
        if self.ticket is not None:
            return post(client, LOGIN_VERIFY, {"ticket": self.ticket, "token": token})
        client.force_authenticate(user=self.user)
        return post(client, URLS[self.endpoint], {"token": token})

    def open_lock(self, clock) -> None:
        """Move to the instant the device's lock ends (setting one of 5 failures if none)."""
        row = reload(self.device)
        if row.locked_until is None:
            TOTPDevice.objects.filter(pk=row.pk).update(
                failure_count=5, locked_until=timezone.now()
            )
        else:
            clock.move_to(row.locked_until, tick=False)


@pytest.fixture(params=CASES, ids=[f"{e}-{k}" for e, k in CASES])
def case(request, user, password, make_device):
    endpoint, kind = request.param
    return Case(endpoint, kind, user, password, make_device)


def answers(results) -> Counter:
    assert not [r for r in results if isinstance(r, Exception)], results  # no 500
    return Counter((r.status_code, r.json().get("code")) for r in results)


def test_a_burst_at_a_lock_opening_gets_one_evaluation_as_one_at_a_time_would(
    case, evaluations, in_threads, clock
):
    counter = evaluations(None)
    for burst in range(3):
        case.open_lock(clock)
        failures = reload(case.device).failure_count
        counter.count = 0
        got = answers(in_threads(BURST, lambda client, i: case.send(client, case.wrong())))

        assert counter.count == 1, (burst, counter.count, got)
        assert got == {(400, "invalid_token"): 1, (429, "locked"): BURST - 1}, burst
        assert reload(case.device).failure_count == failures + 1


def test_a_right_code_among_wrong_ones_wins_no_more_than_its_fair_share(
    case, evaluations, in_threads, clock
):
    """The right code arrives while a wrong one, sent first at the lock opening, is being
    evaluated: one at a time, the wrong one's failure would lock the right one out, so must
    parallel requests. Sent alone at the next opening, the right code is accepted."""
    counter = evaluations(case.recovery[0] if case.recovery else None)
    case.open_lock(clock)
    right, wrong = case.right(), case.wrong()

    def send(client, i):
        if i == 0:
            assert counter.wrong.wait(timeout=30), "no wrong code was evaluated"
            return case.send(client, right)
        return case.send(client, wrong)

    results = in_threads(BURST, send)

    got = answers(results)
    assert (results[0].status_code, results[0].json().get("code")) == (429, "locked"), got
    assert got == {(400, "invalid_token"): 1, (429, "locked"): BURST - 1}
    assert counter.count == 1
    assert reload(case.device).use_count == 0
    case.open_lock(clock)
    right = case.right()  # the step the clock moved to
    assert in_threads(1, lambda client, i: case.send(client, right))[0].status_code == 200
