"""Issue 12.2: a cache outage does not take the login down.

The throttles keep their counts in the cache; the guess limit itself is the lock in the
database. Each test runs its own redis-server on a free loopback port (nothing saved to disk)
behind Django's RedisCache and django-redis, and stops it mid-test: every endpoint that takes a
code or a password keeps answering, one ERROR line a request names the cache, and the lock still
limits guesses. ``TOTP_THROTTLE_FAIL_CLOSED = True`` answers 503 instead, and nothing is checked.
"""

from __future__ import annotations

import logging

import pytest
from rest_framework.test import APIClient

from drf_totp.settings import totp_settings
from tests.code_checks import (
    CODE_ENDPOINTS,
    LOGIN,
    VALIDATE,
    assert_error,
    current_code,
    device_for,
    post,
    post_token,
    redeem,
    start_login,
    wrong_code,
)
from tests.faults import REDIS_BACKENDS, redis_cache_settings, redis_server_or_skip

pytestmark = pytest.mark.usefixtures("clock")

ENDPOINTS = [*CODE_ENDPOINTS, "login", "login-verify"]


@pytest.fixture(params=list(REDIS_BACKENDS))
def redis_server(request, settings):
    """A redis-server of the test's own, the default cache of the project."""
    server = redis_server_or_skip()
    server.start()
    settings.CACHES = redis_cache_settings(request.param, server.url)
    yield server
    server.stop()


@pytest.fixture
def send(user, password, make_device):
    """``send(endpoint, right)``: one request to the endpoint with a right or a wrong code (or
    password, for login/); the client of alice, logged in except for the login endpoints."""
    devices = {}
    tickets = {}

    def send_to(endpoint: str, right: bool):
        if endpoint not in devices:
            devices[endpoint] = device_for(endpoint, user, make_device)
        device = devices[endpoint]
        token = current_code(device) if right else wrong_code(device)
        if endpoint == "login":
            body = {"username": user.get_username(), "password": password if right else "wrong"}
            return post(APIClient(), LOGIN, body)
        if endpoint == "login-verify":
            if endpoint not in tickets:
                tickets[endpoint] = start_login(APIClient(), user, password)
            return redeem(APIClient(), tickets[endpoint], token)
        client = APIClient()
        client.force_authenticate(user=user)
        return post_token(client, CODE_ENDPOINTS[endpoint], token)

    return send_to


def refusal_of(endpoint: str) -> str:
    return "invalid_credentials" if endpoint == "login" else "invalid_token"


def cache_errors(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "drf_totp" and record.levelno >= logging.ERROR
    ]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_with_the_cache_down_every_endpoint_answers_and_logs_one_error_a_request(
    redis_server, send, endpoint, caplog, settings
):
    assert_error(send(endpoint, right=False), 400, refusal_of(endpoint))
    assert redis_server.keys() > 0  # the throttles counted in this server

    redis_server.stop()
    with caplog.at_level(logging.ERROR, logger="drf_totp"):
        response = send(endpoint, right=True)

    assert response.status_code == 200, response.content
    [line] = cache_errors(caplog)  # two throttles, one line
    backend = settings.CACHES["default"]["BACKEND"]
    assert f"cache='default' ({backend})" in line
    assert "let through" in line
    assert redis_server.password not in line


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_once_the_cache_is_back_the_throttles_count_again(redis_server, send, endpoint, caplog):
    redis_server.stop()
    assert_error(send(endpoint, right=False), 400, refusal_of(endpoint))
    redis_server.start()
    caplog.clear()

    with caplog.at_level(logging.ERROR, logger="drf_totp"):
        assert_error(send(endpoint, right=False), 400, refusal_of(endpoint))

    assert cache_errors(caplog) == []
    assert redis_server.keys() > 0


@pytest.mark.parametrize("endpoint", ["validate", "login-verify"])
def test_with_the_cache_down_the_database_lock_still_limits_guesses(redis_server, send, endpoint):
    free = totp_settings.FREE_FAILURES
    redis_server.stop()
    answers = [send(endpoint, right=False) for _ in range(free + 3)]

    codes = [response.json()["code"] for response in answers]
    assert codes == ["invalid_token"] * (free + 1) + ["locked"] * 2
    assert send(endpoint, right=True).json()["code"] == "locked"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_fail_closed_answers_503_and_checks_nothing(redis_server, send, endpoint, settings):
    settings.TOTP_THROTTLE_FAIL_CLOSED = True
    assert_error(send(endpoint, right=False), 400, refusal_of(endpoint))
    redis_server.stop()

    response = send(endpoint, right=True)

    body = assert_error(response, 503, "throttle_unavailable")
    assert int(response["Retry-After"]) == body["retry_after"] > 0
    redis_server.start()
    assert send(endpoint, right=True).status_code == 200  # the code was not used up


def test_a_throttle_refused_by_a_working_cache_is_unchanged(redis_server, user, make_device):
    """The guard changes nothing while the cache works: the 11th code of a minute is throttled
    (malformed ones before it, which the lock does not count)."""
    device = device_for("validate", user, make_device)
    client = APIClient()
    client.force_authenticate(user=user)
    for _ in range(10):
        assert_error(post_token(client, VALIDATE, "not-a-code"), 400, "invalid_format")

    assert_error(post_token(client, VALIDATE, current_code(device)), 429, "throttled")
