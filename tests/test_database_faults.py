"""Issue 12.3: a failing database answers in the documented JSON shape.

A connection killed mid-request (``pg_terminate_backend``, on the test's own connection only), a
statement timeout and a database whose port is closed each give ``503`` with the code
``service_unavailable`` and a ``Retry-After``, never Django's HTML 500, on every endpoint of the
package and whether the failure hits the view or DRF's authentication; the cause is logged at
ERROR with the exception. Once the database is back, the next request is served.

PostgreSQL only (the CI's PostgreSQL stage runs them): the faults are made with its own tools.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import pytest
from django.db import close_old_connections, connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from drf_totp.exceptions import RETRY_AFTER_SECONDS
from tests.code_checks import (
    CODE_ENDPOINTS,
    LOGIN,
    STATUS,
    assert_error,
    current_code,
    device_for,
    post,
    post_token,
    redeem,
    start_login,
)
from tests.faults import backend_pid, connect_aside, free_port, require_postgresql, terminate

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("clock", "unthrottled", "postgresql"),
]

ENDPOINTS = [*CODE_ENDPOINTS, "login", "login-verify"]


@pytest.fixture
def postgresql():
    require_postgresql()
    yield
    connection.close()  # a test that failed may leave its connection broken


@pytest.fixture
def send(user, password, make_device):
    """``send(endpoint)``: alice's request with the right code (or password, for login/), from a
    fresh client (force-authenticated except for the login endpoints). Each endpoint gets its
    device (and login/verify/ its ticket) before the first request, while the database works."""
    prepared = {}

    def prepare(endpoint: str) -> None:
        device = device_for(endpoint, user, make_device)
        ticket = start_login(APIClient(), user, password) if endpoint == "login-verify" else None
        prepared[endpoint] = (device, ticket)

    def send_to(endpoint: str):
        device, ticket = prepared[endpoint]
        if endpoint == "login":
            return post(APIClient(), LOGIN, {"username": user.get_username(), "password": password})
        if endpoint == "login-verify":
            return redeem(APIClient(), ticket, current_code(device))
        client = APIClient()
        client.force_authenticate(user=user)
        return post_token(client, CODE_ENDPOINTS[endpoint], current_code(device))

    send_to.prepare = prepare  # type: ignore[attr-defined]
    return send_to


def assert_unavailable(response, caplog) -> None:
    """A JSON 503 ``service_unavailable`` with Retry-After; the database error logged."""
    assert response["Content-Type"] == "application/json"
    body = assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS) == str(body["retry_after"])
    [record] = [r for r in caplog.records if r.name == "drf_totp" and r.levelno >= logging.ERROR]
    assert record.exc_info is not None
    assert type(record.exc_info[1]).__module__ == "django.db.utils"


def served_again(send, endpoint: str) -> None:
    """What a server does before the next request (close_old_connections drops a broken
    connection; the test client skips it), then the request is answered as usual."""
    close_old_connections()
    response = send(endpoint)
    assert response.status_code == 200, response.content


@contextmanager
def killed_before(table: str):
    """Terminate this thread's connection just before its first statement on ``table``."""
    done = []

    def kill_first(execute, sql, params, many, context):
        if not done and table in sql:
            done.append(terminate([backend_pid()]))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(kill_first):
        yield done


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_connection_killed_mid_request_gets_a_json_503(send, endpoint, caplog):
    send.prepare(endpoint)
    caplog.set_level(logging.ERROR, logger="drf_totp")

    with killed_before("drf_totp_totpdevice") as killed:
        response = send(endpoint)

    assert killed == [1], "the request never reached the device table"
    assert_unavailable(response, caplog)
    served_again(send, endpoint)


def test_a_connection_left_broken_gets_a_json_503_too(send, caplog):
    """Without close_old_connections, the next request meets the closed connection
    (InterfaceError): still a 503."""
    send.prepare("validate")
    with killed_before("drf_totp_totpdevice"):
        send("validate")
    caplog.clear()
    caplog.set_level(logging.ERROR, logger="drf_totp")

    assert_unavailable(send("validate"), caplog)
    served_again(send, "validate")


@contextmanager
def table_locked(table: str):
    """Another connection holds an exclusive lock on ``table`` until the block ends."""
    with connect_aside() as holder:
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        holder.rollback()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_statement_timeout_gets_a_json_503(send, endpoint, caplog):
    send.prepare(endpoint)
    caplog.set_level(logging.ERROR, logger="drf_totp")
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 200")

    with table_locked("drf_totp_totpdevice"):
        response = send(endpoint)

    assert_unavailable(response, caplog)
    with connection.cursor() as cursor:
        cursor.execute("RESET statement_timeout")
    served_again(send, endpoint)


@contextmanager
def database_down():
    """The default database's port closed: every new connection is refused."""
    settings = connection.settings_dict
    saved = settings["HOST"], settings["PORT"]
    connection.close()
    settings["HOST"], settings["PORT"] = "127.0.0.1", str(free_port())
    try:
        yield
    finally:
        connection.close()
        settings["HOST"], settings["PORT"] = saved


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_database_that_is_down_gets_a_json_503(send, endpoint, caplog):
    send.prepare(endpoint)
    caplog.set_level(logging.ERROR, logger="drf_totp")

    with database_down():
        response = send(endpoint)

    assert_unavailable(response, caplog)
    served_again(send, endpoint)


@pytest.mark.parametrize("credential", ["session", "token"])
def test_a_database_down_during_drf_authentication_gets_a_json_503(
    user, password, credential, caplog
):
    """The session or the token is looked up by DRF's authentication, before the view."""
    client = APIClient()
    if credential == "session":
        assert client.login(username=user.get_username(), password=password)
    else:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    caplog.set_level(logging.ERROR, logger="drf_totp")

    with database_down():
        response = client.get(STATUS)

    assert_unavailable(response, caplog)
    close_old_connections()
    assert client.get(STATUS).status_code == 200
