"""Issue 12, item 7: a right code that loses a race is told what happened, never "This code is
not valid." (``invalid_token``).

Two requests run in real threads, each on its own database connection, ordered so that the
loser has its guess reserved and its code found right before the winner's success is written,
and writes its own success after it: two ``verify/`` calls (the same code, or two codes of the
window), two ``login/verify/`` calls with one ticket (TOTP or recovery codes). The loser hears
``token_reused`` (its code, or its step, was used), ``already_enabled`` or ``invalid_ticket``
(the ticket completed the other login). A right code is not a guess: nothing stays counted.
"""

from __future__ import annotations

import threading

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from drf_totp import otp, recovery
from tests.code_checks import (
    LOGIN_VERIFY,
    VERIFY,
    code_for_step,
    post,
    reload,
    start_login,
    step_at,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("clock", "unthrottled"),
]

WINNER, LOSER = 0, 1


@pytest.fixture
def loser_behind(monkeypatch):
    """The loser computes its code while the winner waits; then the loser waits until the
    winner has its answer. ``done()`` is called by the winner's thread when answered."""
    role = threading.local()
    loser_evaluating = threading.Event()
    winner_done = threading.Event()
    real_step, real_digests = otp.matching_step, recovery.digests

    def gate() -> None:
        if getattr(role, "name", None) == LOSER:
            loser_evaluating.set()
            assert winner_done.wait(timeout=30)
        elif getattr(role, "name", None) == WINNER:
            assert loser_evaluating.wait(timeout=30)

    def matching_step(*args, **kwargs):
        gate()
        return real_step(*args, **kwargs)

    def digests(*args, **kwargs):
        gate()
        return real_digests(*args, **kwargs)

    monkeypatch.setattr(otp, "matching_step", matching_step)
    monkeypatch.setattr(recovery, "digests", digests)

    def run(in_threads, send):
        def work(client, i):
            role.name = i
            try:
                return send(client, i)
            finally:
                if i == WINNER:
                    winner_done.set()

        results = in_threads(2, work)
        assert not [r for r in results if isinstance(r, Exception)], results
        return [(r.status_code, r.json().get("code")) for r in results]

    return run


@pytest.mark.parametrize("steps", [(0, 0), (0, 1), (1, 0)], ids=["same", "later", "earlier"])
def test_two_verify_calls_the_loser_is_told_what_happened(
    user, make_device, in_threads, loser_behind, steps
):
    device = make_device(user, confirmed=False)
    now = step_at(device)
    codes = [code_for_step(device, now + offset) for offset in steps]

    def send(client, i):
        client.force_authenticate(user=user)
        return post(client, VERIFY, {"token": codes[i]})

    winner, loser = loser_behind(in_threads, send)

    assert winner == (200, None)
    expected = "token_reused" if steps[LOSER] <= steps[WINNER] else "already_enabled"
    assert loser == (409 if expected == "already_enabled" else 400, expected)
    after = reload(device)
    assert (after.is_confirmed, after.failure_count, after.locked_until) == (True, 0, None)


@pytest.fixture
def one_ticket(user, password, make_device):
    device = make_device(user)
    return device, start_login(APIClient(), user, password)


@pytest.mark.parametrize("steps", [(0, 0), (0, 1), (1, 0)], ids=["same", "later", "earlier"])
def test_two_logins_with_one_ticket_and_totp_codes(one_ticket, in_threads, loser_behind, steps):
    device, ticket = one_ticket
    now = step_at(device)
    codes = [code_for_step(device, now + offset) for offset in steps]

    winner, loser = loser_behind(
        in_threads,
        lambda client, i: post(client, LOGIN_VERIFY, {"ticket": ticket, "token": codes[i]}),
    )

    assert winner == (200, None)
    # Its code's step was used by the winner, or its ticket completed the winner's login.
    expected = "token_reused" if steps[LOSER] <= steps[WINNER] else "invalid_ticket"
    assert loser == (400, expected)
    after = reload(device)
    assert (after.use_count, after.failure_count, after.locked_until) == (1, 0, None)


@pytest.mark.parametrize("same", [True, False], ids=["one recovery code", "two recovery codes"])
def test_two_logins_with_one_ticket_and_recovery_codes(
    user, one_ticket, in_threads, loser_behind, same
):
    device, ticket = one_ticket
    codes = recovery.issue(user, timezone.now())
    sent = [codes[0], codes[0] if same else codes[1]]

    winner, loser = loser_behind(
        in_threads,
        lambda client, i: post(client, LOGIN_VERIFY, {"ticket": ticket, "token": sent[i]}),
    )

    assert winner == (200, None)
    assert loser == (400, "token_reused" if same else "invalid_ticket")
    # The losing recovery code was not used up.
    assert recovery.unused(user.pk).count() == 9
    after = reload(device)
    assert (after.use_count, after.failure_count, after.locked_until) == (1, 0, None)
