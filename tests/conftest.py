"""Shared fixtures for the drf-totp test suite."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pyotp
import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone as django_timezone
from django.utils.crypto import get_random_string
from rest_framework.test import APIClient

from drf_totp import authentication
from drf_totp.devices import new_secret
from drf_totp.models import LoginToken, TOTPDevice

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _clear_cache():
    """Start and end every test with an empty cache.

    The cache outlives a test (LocMem lives as long as the process, Redis longer), so
    throttling or lockout state must not leak from one test into the next.
    """
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def password() -> str:
    """The password of ``user`` and ``other_user``."""
    return PASSWORD


@pytest.fixture
def user(db, django_user_model):
    return django_user_model.objects.create_user(
        username="alice", email="alice@example.com", password=PASSWORD
    )


@pytest.fixture
def other_user(db, django_user_model):
    return django_user_model.objects.create_user(
        username="bob", email="bob@example.com", password=PASSWORD
    )


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def auth_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


# --- Time, clients and devices (issue #2 tests) ----------------------------------------------

# The first second of a 30-second TOTP step, so a test has the whole step before the next one.
STEP_START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)
assert int(STEP_START.timestamp()) % 30 == 0


@pytest.fixture
def clock(time_machine):
    """Time frozen at ``STEP_START``; ``clock.shift(30)`` moves to the next step."""
    time_machine.move_to(STEP_START, tick=False)
    return time_machine


@pytest.fixture
def session_client(user, password) -> APIClient:
    """Logged in with Django's session, CSRF enforced, sending a valid CSRF cookie and header.

    ``session_client.credentials()`` drops the header (the cookie stays) to send a request a
    cross-site form would.
    """
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=user.get_username(), password=password)
    csrf = get_random_string(32)
    client.cookies[settings.CSRF_COOKIE_NAME] = csrf
    client.credentials(HTTP_X_CSRFTOKEN=csrf)
    return client


@pytest.fixture
def token_client(user) -> APIClient:
    """Authenticated with a drf-totp login token (``Authorization: Token``, no session cookie),
    as the "authtoken" login issues it: a token that can carry the second factor's mark."""
    key = authentication.new_key()
    LoginToken.objects.create(
        user=user, digest=authentication.key_digest(key), created_at=django_timezone.now()
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def make_device(db):
    """Create a TOTP device row directly and return it as read back from the database."""

    def make(owner, *, confirmed: bool = True, **fields) -> TOTPDevice:
        fields.setdefault("secret", new_secret())
        fields.setdefault("created_at", django_timezone.now())
        if confirmed:
            fields.setdefault("confirmed_at", fields["created_at"])
        device = TOTPDevice.objects.create(user=owner, is_confirmed=confirmed, **fields)
        return TOTPDevice.objects.get(pk=device.pk)

    return make


def authenticator_code(source, at=None) -> str:
    """The code an authenticator app shows for an otpauth URL or a device, now or ``at``.

    Computed with pyotp from the URL (as an app would) or the device's parameters, not with the
    package's own code path.
    """
    if isinstance(source, str):
        totp = pyotp.parse_uri(source)
    else:
        totp = pyotp.TOTP(
            source.secret,
            digits=source.digits,
            digest=getattr(hashlib, source.algorithm.lower()),
            interval=source.period,
        )
    return totp.now() if at is None else totp.at(at)


@pytest.fixture
def authenticator():
    """``authenticator(url_or_device, at=None)``: the code an authenticator app would show."""
    return authenticator_code


@pytest.fixture
def no_throttles(settings):
    """Code endpoints unthrottled, for tests that send more codes than the per-minute rates."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"totp_user": None, "totp_ip": None},
    }


# --- Two-step login, credentials, recovery codes (issue #4 tests) ----------------------------


@pytest.fixture
def unthrottled(settings):
    """Every drf_totp throttle off (code and login scopes), for tests that send many requests."""
    from drf_totp.throttling import DEFAULT_RATES

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(DEFAULT_RATES),
    }


@pytest.fixture
def totp_device(user, make_device, clock) -> TOTPDevice:
    """alice's confirmed device, created with time frozen at ``STEP_START``."""
    return make_device(user)


@pytest.fixture
def recovery_codes(user, totp_device) -> list[str]:
    """A fresh set of recovery codes for alice, as shown to her (``XXXXX-XXXXX-XXXXX-XXXXX``)."""
    from drf_totp import recovery

    return recovery.issue(user, django_timezone.now())


@pytest.fixture
def ticket(api_client, user, password, totp_device) -> str:
    """A ticket from alice's password step, for the code step of her login."""
    from tests.code_checks import start_login

    return start_login(api_client, user, password)


@pytest.fixture
def in_threads():
    """``in_threads(n, send)``: call ``send(client, i)`` in ``n`` threads released together.

    Each thread has its own ``APIClient`` and database connection (closed at its end); returns
    what each call returned, or the exception it raised. Needs ``django_db(transaction=True)``.
    """
    import threading

    from django.db import connection

    def run(n: int, send) -> list:
        barrier = threading.Barrier(n)
        results: list = [None] * n

        def work(i: int) -> None:
            try:
                client = APIClient()
                barrier.wait(timeout=30)
                results[i] = send(client, i)
            except Exception as exc:  # reported to the test, never lost in the thread
                results[i] = exc
            finally:
                connection.close()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a request thread hung"
        return results

    return run


@pytest.fixture
def received():
    """The reset and unlock signals sent during the test: ``(name, user, request)`` of each.

    test_signals.py has its own ``received``, for every signal of the package.
    """
    from drf_totp import signals

    caught = []
    connected = [signals.totp_disabled, signals.totp_unlocked]
    for signal in connected:

        def receiver(sender, user, request, _name=signal.name, **kwargs):
            caught.append((_name, user, request))

        signal.connect(receiver, weak=False, dispatch_uid=f"tests-received-{signal.name}")
    yield caught
    for signal in connected:
        signal.disconnect(dispatch_uid=f"tests-received-{signal.name}")


@pytest.fixture
def counting_cache():
    """Skips the test where the cache keeps nothing (DummyCache): DRF throttles need a cache."""
    from django.core.cache import caches
    from django.core.cache.backends.dummy import DummyCache

    if isinstance(caches["default"], DummyCache):
        pytest.skip("DummyCache keeps no throttle history")
