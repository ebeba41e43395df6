"""Issue 11, item 6: signals are exact. Each failure count, each lock and the lock-out is
signalled exactly once, with the state that the statement counting the failure returned (on
MariaDB, the SELECT in its transaction), never a later read: ten simultaneous wrong codes give
the counts 1..10 once each, one lock gets one ``totp_locked``, and a failure whose commit
succeeded is signalled even if the database connection drops right after.

The threads' statements that change the device's row are followed by a pause of 50 ms, as on a
busy server: a signal that re-read the row after writing it would see the later writes of the
others.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from drf_totp import otp, signals
from drf_totp.models import TOTPDevice
from tests.code_checks import VALIDATE, current_code, post_token, reload, wrong_code

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("clock", "no_throttles"),
]

PAUSE = 0.05


@pytest.fixture
def caught():
    """``(signal name, kwargs)`` of every failure signal, from every thread."""
    log: list[tuple[str, dict]] = []
    lock = threading.Lock()
    watched = [signals.totp_failed, signals.totp_locked, signals.totp_locked_out]
    for signal in watched:

        def receiver(sender, _name=signal.name, **kwargs):
            with lock:
                log.append((_name, kwargs))

        signal.connect(receiver, weak=False, dispatch_uid=f"exact-{signal.name}")
    yield log
    for signal in watched:
        signal.disconnect(dispatch_uid=f"exact-{signal.name}")


def pause_after_writes(execute, sql, params, many, context):
    result = execute(sql, params, many, context)
    if sql.lstrip().upper().startswith("UPDATE") and "failure_count" in sql:
        time.sleep(PAUSE)
    return result


def wrong_codes(user, device):
    def send(client, i):
        client.force_authenticate(user=user)
        with connection.execute_wrapper(pause_after_writes):
            return post_token(client, VALIDATE, wrong_code(device))

    return send


def counts(caught, name: str) -> list[int]:
    return sorted(kwargs["failure_count"] for got, kwargs in caught if got == name)


def test_ten_simultaneous_wrong_codes_signal_the_counts_1_to_10_once_each(
    user, make_device, caught, in_threads, settings
):
    settings.TOTP_FREE_FAILURES = 20  # no lock: all ten are counted
    device = make_device(user)

    results = in_threads(10, wrong_codes(user, device))

    assert [r.status_code for r in results] == [400] * 10
    assert counts(caught, "totp_failed") == list(range(1, 11))
    assert reload(device).failure_count == 10


def test_one_lock_is_signalled_once_with_the_failure_that_set_it(
    user, make_device, caught, in_threads
):
    device = make_device(user)

    results = in_threads(20, wrong_codes(user, device))

    assert Counter(r.status_code for r in results) == {400: 5, 429: 15}
    assert counts(caught, "totp_failed") == [1, 2, 3, 4, 5]
    [locked] = [kwargs for got, kwargs in caught if got == "totp_locked"]
    after = reload(device)
    assert (locked["failure_count"], locked["locked_until"]) == (5, after.locked_until)
    assert after.locked_until == timezone.now() + timedelta(seconds=30)


def test_reaching_the_failure_limit_is_signalled_once(
    auth_client, user, make_device, caught, in_threads, settings, clock
):
    settings.TOTP_MAX_FAILURES = 7
    settings.TOTP_FREE_FAILURES = 10
    device = make_device(user)
    TOTPDevice.objects.filter(pk=device.pk).update(failure_count=5)

    results = in_threads(5, wrong_codes(user, device))

    assert Counter(r.status_code for r in results) == {400: 2, 403: 3}
    assert counts(caught, "totp_locked_out") == [7]
    # Wrong recovery codes are still checked past the limit: counted, but the limit was
    # reached once.
    post_token(auth_client, VALIDATE, "22222-33333-44444-55555")
    assert counts(caught, "totp_failed") == [6, 7, 8]
    assert counts(caught, "totp_locked_out") == [7]


@pytest.fixture
def dropped_after_the_commit(monkeypatch):
    """Once a code is being evaluated, every statement outside a transaction fails as if the
    connection had dropped: whatever was committed before stays, nothing more reaches the
    database (a transaction still open may finish, as the one that reserves on MariaDB)."""
    dropped = threading.Event()
    real = otp.matching_step

    def matching_step(*args, **kwargs):
        dropped.set()
        return real(*args, **kwargs)

    def drop(execute, sql, params, many, context):
        if dropped.is_set() and not connection.in_atomic_block:
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    monkeypatch.setattr(otp, "matching_step", matching_step)
    with connection.execute_wrapper(drop):
        yield dropped


def test_a_committed_failure_is_signalled_though_the_connection_drops_after(
    auth_client, user, make_device, caught, dropped_after_the_commit
):
    device = make_device(user, failure_count=4)

    response = post_token(auth_client, VALIDATE, wrong_code(device))

    assert response.status_code == 400, response.content
    assert dropped_after_the_commit.is_set()
    dropped_after_the_commit.clear()
    after = reload(device)
    assert after.failure_count == 5
    assert [name for name, _ in caught] == ["totp_failed", "totp_locked"]
    assert caught[0][1]["failure_count"] == 5
    assert caught[1][1]["locked_until"] == after.locked_until


def test_a_right_code_is_not_a_failure_and_sends_none(
    auth_client, user, make_device, caught, settings
):
    device = make_device(user, failure_count=4)

    assert post_token(auth_client, VALIDATE, current_code(device)).status_code == 200
    assert post_token(auth_client, VALIDATE, current_code(device)).status_code == 400  # reused

    assert caught == []
    assert (reload(device).failure_count, reload(device).locked_until) == (0, None)
