"""GET /auth/otp/status/: the user's 2FA state, read-only and free of secrets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from drf_totp.devices import provisioning_uri
from drf_totp.settings import totp_settings

STATUS = "/auth/otp/status/"

pytestmark = pytest.mark.usefixtures("clock")


# The state issue #2 specifies; the body may carry more.
FIELDS = ("enabled", "pending", "confirmed_at", "last_used_at", "locked_until", "locked_out")


def status_of(client) -> dict:
    """The specified fields of the status body."""
    response = client.get(STATUS)
    assert response.status_code == 200, response.content
    body = response.json()
    return {field: body[field] for field in FIELDS}


def instant(text: str | None):
    return None if text is None else parse_datetime(text)


def test_status_without_a_device(auth_client):
    assert status_of(auth_client) == {
        "enabled": False,
        "pending": False,
        "confirmed_at": None,
        "last_used_at": None,
        "locked_until": None,
        "locked_out": False,
    }


def test_status_of_a_pending_device(auth_client, user, make_device):
    make_device(user, confirmed=False)

    assert status_of(auth_client) == {
        "enabled": False,
        "pending": True,
        "confirmed_at": None,
        "last_used_at": None,
        "locked_until": None,
        "locked_out": False,
    }


def test_status_of_a_confirmed_device(auth_client, user, make_device):
    now = timezone.now()
    make_device(
        user,
        created_at=now - timedelta(days=3),
        confirmed_at=now - timedelta(days=2),
        last_used_at=now - timedelta(hours=1),
    )

    body = status_of(auth_client)

    assert (body["enabled"], body["pending"], body["locked_out"]) == (True, False, False)
    assert instant(body["confirmed_at"]) == now - timedelta(days=2)
    assert instant(body["last_used_at"]) == now - timedelta(hours=1)
    assert body["locked_until"] is None


def test_status_of_a_locked_device_shows_until_when(auth_client, user, make_device):
    until = timezone.now() + timedelta(minutes=5)
    make_device(user, failure_count=6, locked_until=until)

    body = status_of(auth_client)

    assert body["enabled"] is True
    assert instant(body["locked_until"]) == until
    assert body["locked_out"] is False


def test_status_drops_a_lock_that_has_expired(auth_client, user, make_device):
    make_device(user, failure_count=6, locked_until=timezone.now() - timedelta(seconds=1))

    assert status_of(auth_client)["locked_until"] is None


def test_status_of_a_device_past_the_failure_limit_is_locked_out(auth_client, user, make_device):
    make_device(user, failure_count=totp_settings.MAX_FAILURES)

    body = status_of(auth_client)

    assert body["enabled"] is True
    assert body["locked_out"] is True


def test_status_one_failure_below_the_limit_is_not_locked_out(auth_client, user, make_device):
    make_device(user, failure_count=totp_settings.MAX_FAILURES - 1)

    assert status_of(auth_client)["locked_out"] is False


@pytest.mark.parametrize("confirmed", [False, True], ids=["pending", "confirmed"])
def test_status_never_shows_the_secret_or_the_otpauth_url(
    auth_client, user, make_device, confirmed
):
    device = make_device(user, confirmed=confirmed)

    text = auth_client.get(STATUS).content.decode()

    assert device.secret not in text
    assert device.secret.lower() not in text.lower()
    assert "otpauth" not in text
    assert provisioning_uri(device) not in text


@pytest.mark.parametrize("confirmed", [None, False, True], ids=["none", "pending", "confirmed"])
def test_status_reads_the_database_once_and_writes_nothing(
    auth_client, user, make_device, confirmed
):
    if confirmed is not None:
        make_device(user, confirmed=confirmed, failure_count=6, locked_until=timezone.now())

    with CaptureQueriesContext(connection) as queries:
        response = auth_client.get(STATUS)

    assert response.status_code == 200
    statements = [query["sql"].lstrip().split(None, 1)[0].upper() for query in queries]
    assert statements == ["SELECT"], [query["sql"] for query in queries]


def test_status_reports_only_the_requesting_users_device(auth_client, other_user, make_device):
    make_device(other_user)

    assert status_of(auth_client)["enabled"] is False
