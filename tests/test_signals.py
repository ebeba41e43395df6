"""Signals: enabled, disabled, verified, failed, locked, recovery code used and recovery codes
regenerated, each sent once with the user and the request, and only once the change is committed.

Each request runs inside the test's transaction, so ``django_capture_on_commit_callbacks``
shows what waits for the commit: nothing is received before the callbacks run. No signal, and
no log line sent with one, carries a code or a secret.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from drf_totp import devices, signals
from drf_totp.models import TOTPDevice
from tests.code_checks import (
    DISABLE,
    GENERATE,
    LOGIN,
    LOGIN_VERIFY,
    RECOVERY_CODES,
    VALIDATE,
    VERIFY,
    post,
    wrong,
)

EVENTS = [
    "totp_enabled",
    "totp_disabled",
    "totp_verified",
    "totp_failed",
    "totp_locked",
    "recovery_code_used",
    "recovery_codes_regenerated",
    "totp_unlocked",
]

pytestmark = pytest.mark.usefixtures("clock")


class Received(list):
    """``(name, kwargs)`` of every drf_totp signal received, in order."""

    def named(self, name: str) -> list[dict]:
        return [kwargs for got, kwargs in self if got == name]

    def names(self) -> list[str]:
        return [name for name, _ in self]


@pytest.fixture
def received():
    log = Received()
    receivers = []
    for name in EVENTS:

        def receiver(sender, _name=name, **kwargs):
            log.append((_name, {"sender": sender, **kwargs}))

        getattr(signals, name).connect(receiver, weak=False)
        receivers.append((name, receiver))
    yield log
    for name, receiver in receivers:
        getattr(signals, name).disconnect(receiver)


@pytest.fixture
def committed(django_capture_on_commit_callbacks, received):
    """``with committed():`` runs a request; asserts nothing was sent before the commit, then
    runs the commit callbacks (which send the signals)."""

    class Commit:
        def __init__(self):
            self.manager = django_capture_on_commit_callbacks(execute=False)

        def __enter__(self):
            self.callbacks = self.manager.__enter__()
            return self.callbacks

        def __exit__(self, *exc):
            self.manager.__exit__(*exc)
            if exc[0] is None:
                assert received == [], "a signal was sent before the commit"
                for callback in self.callbacks:
                    callback()

    return Commit


def assert_sent_once(received: Received, name: str, user, path: str) -> dict:
    [kwargs] = received.named(name)
    assert kwargs["user"] == user
    assert kwargs["sender"] is type(user)
    assert kwargs["request"] is not None
    assert kwargs["request"].path == path
    return kwargs


def extras(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k not in ("sender", "signal", "user", "request")}


# --- each signal, once, after commit -----------------------------------------------------------------


def test_enabling_sends_totp_enabled(auth_client, user, authenticator, committed, received):
    url = post(auth_client, GENERATE, {}).json()["otpauth_url"]

    with committed():
        response = post(auth_client, VERIFY, {"token": authenticator(url)})

    assert response.status_code == 200
    kwargs = assert_sent_once(received, "totp_enabled", user, VERIFY)
    assert extras(kwargs) == {}


def test_disabling_sends_totp_disabled(
    auth_client, user, totp_device, authenticator, committed, received
):
    with committed():
        assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200

    kwargs = assert_sent_once(received, "totp_disabled", user, DISABLE)
    assert extras(kwargs) == {}


def test_a_totp_code_at_validate_sends_totp_verified(
    auth_client, user, totp_device, authenticator, committed, received
):
    with committed():
        assert post(auth_client, VALIDATE, {"token": authenticator(totp_device)}).status_code == 200

    kwargs = assert_sent_once(received, "totp_verified", user, VALIDATE)
    assert extras(kwargs) == {"method": "totp"}
    assert received.names() == ["totp_verified"]


def test_a_recovery_code_sends_recovery_code_used_and_totp_verified(
    auth_client, user, recovery_codes, committed, received
):
    with committed():
        assert post(auth_client, VALIDATE, {"token": recovery_codes[0]}).status_code == 200

    used = assert_sent_once(received, "recovery_code_used", user, VALIDATE)
    assert extras(used) == {"remaining": 9}
    verified = assert_sent_once(received, "totp_verified", user, VALIDATE)
    assert extras(verified) == {"method": "recovery"}


def test_a_login_sends_totp_verified_with_the_login_request(
    api_client, user, password, totp_device, authenticator, committed, received
):
    ticket = post(api_client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]

    with committed():
        response = post(
            api_client, LOGIN_VERIFY, {"ticket": ticket, "token": authenticator(totp_device)}
        )

    assert response.status_code == 200
    assert_sent_once(received, "totp_verified", user, LOGIN_VERIFY)


def test_the_password_step_sends_no_drf_totp_signal(
    api_client, user, password, totp_device, committed, received
):
    with committed():
        post(api_client, LOGIN, {"username": "alice", "password": password})
        post(api_client, LOGIN, {"username": "alice", "password": "wrong"})

    assert received == []


def test_a_wrong_code_sends_totp_failed_with_the_failure_count(
    auth_client, user, totp_device, authenticator, committed, received
):
    with committed():
        assert (
            post(auth_client, VALIDATE, {"token": wrong(authenticator(totp_device))}).status_code
            == 400
        )

    kwargs = assert_sent_once(received, "totp_failed", user, VALIDATE)
    assert extras(kwargs) == {"failure_count": 1}
    assert received.names() == ["totp_failed"]


def test_the_failure_that_locks_sends_totp_locked_with_locked_until(
    auth_client, user, totp_device, authenticator, committed, received, settings
):
    settings.TOTP_FREE_FAILURES = 4
    settings.TOTP_LOCKOUT_SECONDS = 30
    TOTPDevice.objects.filter(pk=totp_device.pk).update(failure_count=4)

    with committed():
        assert (
            post(auth_client, VALIDATE, {"token": wrong(authenticator(totp_device))}).status_code
            == 400
        )

    assert received.names() == ["totp_failed", "totp_locked"]
    assert extras(assert_sent_once(received, "totp_failed", user, VALIDATE)) == {"failure_count": 5}
    locked = assert_sent_once(received, "totp_locked", user, VALIDATE)
    assert extras(locked) == {
        "locked_until": timezone.now() + timedelta(seconds=30),
        "failure_count": 5,
    }


def test_a_refusal_while_locked_sends_nothing(
    auth_client, user, totp_device, authenticator, committed, received
):
    TOTPDevice.objects.filter(pk=totp_device.pk).update(
        failure_count=5, locked_until=timezone.now() + timedelta(seconds=30)
    )

    with committed():
        assert (
            post(auth_client, VALIDATE, {"token": wrong(authenticator(totp_device))}).status_code
            == 429
        )

    assert received == []


def test_regenerating_sends_recovery_codes_regenerated(
    auth_client, user, totp_device, recovery_codes, authenticator, committed, received
):
    with committed():
        assert (
            post(auth_client, RECOVERY_CODES, {"token": authenticator(totp_device)}).status_code
            == 200
        )

    kwargs = assert_sent_once(received, "recovery_codes_regenerated", user, RECOVERY_CODES)
    assert extras(kwargs) == {}


def test_an_admin_unlock_sends_totp_unlocked_without_a_request(
    user, totp_device, committed, received
):
    TOTPDevice.objects.filter(pk=totp_device.pk).update(failure_count=7)

    with committed():
        assert devices.unlock(user)

    [kwargs] = received.named("totp_unlocked")
    assert (kwargs["user"], kwargs["request"]) == (user, None)


# --- only once committed ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_signal_waits_for_the_outer_transaction_to_commit(
    user, totp_device, authenticator, received
):
    with transaction.atomic():
        devices.authenticate(user, authenticator(totp_device))
        assert received == []

    assert received.names() == ["totp_verified"]


@pytest.mark.django_db(transaction=True)
def test_no_signal_is_sent_for_a_change_that_is_rolled_back(
    user, totp_device, recovery_codes, authenticator, received
):
    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        devices.disable(user, recovery_codes[0])
        raise Abort

    assert received == []
    assert TOTPDevice.objects.filter(pk=totp_device.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_over_http_each_signal_arrives_once_after_the_request(
    auth_client, user, totp_device, recovery_codes, authenticator, received, clock
):
    assert post(auth_client, VALIDATE, {"token": recovery_codes[0]}).status_code == 200
    clock.shift(30)
    assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200

    assert received.names() == [
        "recovery_code_used",
        "totp_verified",
        "totp_verified",
        "totp_disabled",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_failure_is_signalled_even_when_the_project_uses_atomic_requests(
    auth_client, user, totp_device, authenticator, received, monkeypatch
):
    from django.db import connection

    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)

    response = post(auth_client, VALIDATE, {"token": wrong(authenticator(totp_device))})

    assert response.status_code == 400
    # The error response does not roll the counted failure back, nor its signal.
    totp_device.refresh_from_db()
    assert totp_device.failure_count == 1
    assert received.names() == ["totp_failed"]


# --- nothing secret --------------------------------------------------------------------------------------


def test_no_signal_or_log_line_carries_a_code_or_a_secret(
    auth_client,
    user,
    password,
    authenticator,
    received,
    django_capture_on_commit_callbacks,
    caplog,
    clock,
    settings,
):
    settings.TOTP_FREE_FAILURES = 0
    caplog.set_level(logging.DEBUG, logger="drf_totp")
    sent: list[str] = []

    def send(url, token):
        sent.append(token)
        return post(auth_client, url, {"token": token})

    with django_capture_on_commit_callbacks(execute=True):
        generated = post(auth_client, GENERATE, {}).json()
        url = generated["otpauth_url"]
        codes = send(VERIFY, authenticator(url)).json()["recovery_codes"]
        clock.shift(30)
        send(VALIDATE, authenticator(url))
        clock.shift(30)
        send(VALIDATE, wrong(authenticator(url)))  # failed and locked
        clock.shift(3600)
        send(VALIDATE, codes[0])
        clock.shift(30)
        codes += send(RECOVERY_CODES, authenticator(url)).json()["recovery_codes"]
        clock.shift(30)
        send(DISABLE, authenticator(url))

    assert set(received.names()) >= set(EVENTS) - {"totp_unlocked"}
    secrets = [generated["secret"], url, password, user.password, *codes, *sent]
    secrets += [code.replace("-", "") for code in codes]
    carried = " ".join(repr(extras(kwargs)) for _, kwargs in received)
    logged = " ".join(record.getMessage() for record in caplog.records)
    for secret in secrets:
        assert secret not in carried
        assert secret not in logged
    assert [r.name for r in caplog.records if r.name == "drf_totp"]  # the events were logged
