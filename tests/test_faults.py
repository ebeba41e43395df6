"""Issue 12.8: faults under load, against the real PostgreSQL and a Redis of the test's own.

Threads send validate/ and login/verify/ requests (right codes for alice, wrong codes for bob)
while another thread kills their database connections (``pg_terminate_backend``, the test
database's backends only) again and again, and Redis is stopped for the middle third of the load
and started again. What must hold: no step is accepted twice, no failure answered to a client
is lost, every error is a JSON body with a code, and once the faults end the service is back.

PostgreSQL only (the CI's PostgreSQL stage runs it). Time is frozen: every code falls in one step.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

import pytest
from django.db import close_old_connections, connection
from rest_framework.test import APIClient

from drf_totp.models import TOTPDevice
from drf_totp.throttling import DEFAULT_RATES
from tests.code_checks import (
    SECRET,
    VALIDATE,
    current_code,
    post_token,
    redeem,
    start_login,
    wrong_code,
)
from tests.faults import (
    REDIS_BACKENDS,
    backend_pid,
    redis_cache_settings,
    redis_server_or_skip,
    require_postgresql,
    terminate,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Two threads of each kind; PostgreSQL's connections are shared with whatever else runs.
KINDS = ["validate-right", "login-verify-right", "validate-wrong"]
THREADS_PER_KIND = 2
REQUESTS_PER_THREAD = 40
# Every error a client may see here: a used code, a used ticket, a wrong code, a lost database.
ERROR_CODES = {"token_reused", "invalid_ticket", "invalid_token", "service_unavailable"}


class Load:
    """The requests of every thread, and how far the load has got."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, object]] = []  # (kind, response or exception)
        self.pids: dict[int, int] = {}  # thread index -> backend of its current connection
        self.sent = 0
        self.lock = threading.Lock()
        self.done = threading.Event()

    def record(self, kind: str, answer: object) -> None:
        with self.lock:
            self.answers.append((kind, answer))
            self.sent += 1

    def of(self, kind: str) -> list:
        return [answer for k, answer in self.answers if k == kind]


@pytest.fixture
def faults_setup(settings, request):
    require_postgresql()
    server = redis_server_or_skip()
    server.start()
    settings.CACHES = redis_cache_settings(request.param, server.url)
    # The throttles count (in Redis) but never refuse; the lock never starts: every wrong code
    # is evaluated and counted, so each one must be found in the count.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(DEFAULT_RATES, "100000/min"),
    }
    settings.TOTP_FREE_FAILURES = 10_000
    settings.TOTP_MAX_FAILURES = 10_000
    yield server
    server.stop()
    connection.close()


@pytest.mark.parametrize("faults_setup", list(REDIS_BACKENDS), indirect=True)
def test_killed_connections_and_a_redis_outage_under_load_break_no_invariant(
    faults_setup, user, other_user, password, make_device, clock, caplog
):
    redis_server = faults_setup
    alice = make_device(user, secret=SECRET)
    bob = make_device(other_user)
    right, wrong = current_code(alice), wrong_code(bob)
    tickets = [start_login(APIClient(), user, password) for _ in range(THREADS_PER_KIND)]
    caplog.set_level(logging.ERROR, logger="drf_totp")
    load = Load()
    total = len(KINDS) * THREADS_PER_KIND * REQUESTS_PER_THREAD

    def send(kind: str, index: int):
        client = APIClient()
        if kind == "login-verify-right":
            return redeem(client, tickets[index % THREADS_PER_KIND], right)
        client.force_authenticate(user=user if kind == "validate-right" else other_user)
        return post_token(client, VALIDATE, right if kind == "validate-right" else wrong)

    def worker(kind: str, index: int) -> None:
        try:
            for _ in range(REQUESTS_PER_THREAD):
                # What the server does at each request (the test client skips it): a broken or
                # expired connection is dropped, and the request opens a new one.
                close_old_connections()
                try:
                    load.pids[index] = backend_pid()
                    answer = send(kind, index)
                except Exception as exc:  # a 500 the test client re-raised: recorded, not lost
                    answer = exc
                load.record(kind, answer)
        finally:
            connection.close()

    def chaos() -> tuple[int, bool]:
        """Kill every worker's connection every 20 ms; Redis down for the middle third."""
        kills, outage = 0, False
        while not load.done.wait(0.02):
            kills += terminate(list(load.pids.values()))
            if not outage and load.sent >= total // 3:
                redis_server.stop()
                outage = True
            if outage and redis_server.process is None and load.sent >= 2 * total // 3:
                redis_server.start()
        return kills, outage

    kills_seen: list = []
    chaos_thread = threading.Thread(target=lambda: kills_seen.append(chaos()))
    workers = [
        threading.Thread(target=worker, args=(kind, index))
        for index, kind in enumerate(k for k in KINDS for _ in range(THREADS_PER_KIND))
    ]
    chaos_thread.start()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=300)
    load.done.set()
    chaos_thread.join(timeout=60)
    assert not any(t.is_alive() for t in [*workers, chaos_thread]), "a thread hung"
    if redis_server.process is None:
        redis_server.start()
    close_old_connections()

    # The faults happened: connections were killed mid-load, and Redis was down for a while.
    [(kills, outage)] = kills_seen
    assert kills > 0 and outage
    statuses = Counter(getattr(answer, "status_code", None) for _, answer in load.answers)
    assert statuses[503] > 0, statuses
    assert any("throttle_cache_failed" in r.getMessage() for r in caplog.records)

    # JSON errors only: no 500, no exception, every refusal has its code.
    assert len(load.answers) == total
    for kind, answer in load.answers:
        assert not isinstance(answer, Exception), (kind, answer)
        assert answer["Content-Type"] == "application/json", (kind, answer.content)
        if answer.status_code != 200:
            assert answer.json()["code"] in ERROR_CODES, (kind, answer.content)
            if answer.status_code == 503:
                assert int(answer["Retry-After"]) > 0

    # No step accepted twice: alice's code of this step passed once at most, in any endpoint.
    accepted = [
        answer
        for kind in ("validate-right", "login-verify-right")
        for answer in load.of(kind)
        if answer.status_code == 200
    ]
    alice_now = TOTPDevice.objects.get(pk=alice.pk)
    assert len(accepted) <= 1
    assert alice_now.use_count <= 1
    if accepted:
        assert alice_now.use_count == 1 and alice_now.last_used_step is not None

    # Failures kept: every wrong code answered as such is in bob's count (a 503 may have been
    # counted before its connection died, never the other way round).
    bob_answers = Counter(answer.json()["code"] for answer in load.of("validate-wrong"))
    bob_now = TOTPDevice.objects.get(pk=bob.pk)
    refused = bob_answers["invalid_token"]
    assert refused <= bob_now.failure_count <= refused + bob_answers["service_unavailable"]

    # The service is back: the next step's code passes, wrong codes are counted and answered,
    # and the throttles count in Redis again without an error line.
    caplog.clear()
    clock.shift(alice.period)
    client = APIClient()
    client.force_authenticate(user=user)
    assert post_token(client, VALIDATE, current_code(alice)).status_code == 200
    client.force_authenticate(user=other_user)
    assert post_token(client, VALIDATE, wrong_code(bob)).json()["code"] == "invalid_token"
    assert TOTPDevice.objects.get(pk=bob.pk).failure_count == bob_now.failure_count + 1
    assert redis_server.keys() > 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "drf_totp"]
