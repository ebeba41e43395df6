"""Issue 12, item 4: key mistakes are reported, not crashed on.

After ``SECRET_KEY`` changes without ``SECRET_KEY_FALLBACKS``, or with an unusable or changed
``TOTP_ENCRYPTION_KEYS``, no stored secret decrypts. ``login/`` needs no secret and still issues
tickets; every endpoint that checks a code answers 503 ``secret_unavailable`` and logs one ERROR
line naming the device, its user and the likely cause; ``check --database`` and
``totp_rotate_keys`` name what they cannot decrypt.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core import checks
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from drf_totp import recovery
from drf_totp.models import TOTPDevice
from tests.code_checks import (
    DISABLE,
    GENERATE,
    LOGIN,
    RECOVERY_CODES,
    VALIDATE,
    VERIFY,
    assert_error,
    current_code,
    post,
    post_token,
    redeem,
    start_login,
)
from tests.settings import SECRET_KEY

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock", "unthrottled")]

NEW_SECRET_KEY = "drf-totp-tests-the-next-secret-key-9876543210-zyxwvutsrqponmlkjihgfedcba"
OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@dataclass(frozen=True)
class Break:
    """A way of losing the key: the settings the devices are written under, the settings under
    which they no longer decrypt, what the log line must blame, and the settings that fix it."""

    written: dict[str, Any]
    broken: dict[str, Any]
    cause: str
    fixed: dict[str, Any]


BREAKS = {
    "secret key changed": Break(
        written={},
        broken={"SECRET_KEY": NEW_SECRET_KEY, "SECRET_KEY_FALLBACKS": []},
        cause="SECRET_KEY_FALLBACKS",
        fixed={"SECRET_KEY": NEW_SECRET_KEY, "SECRET_KEY_FALLBACKS": [SECRET_KEY]},
    ),
    "explicit key removed": Break(
        written={"TOTP_ENCRYPTION_KEYS": [OLD_KEY]},
        broken={"TOTP_ENCRYPTION_KEYS": [NEW_KEY]},
        cause="a key was removed from TOTP_ENCRYPTION_KEYS",
        fixed={"TOTP_ENCRYPTION_KEYS": [NEW_KEY, OLD_KEY]},
    ),
    "unusable explicit key": Break(
        written={},
        broken={"TOTP_ENCRYPTION_KEYS": ["not-a-fernet-key"]},
        cause="TOTP_ENCRYPTION_KEYS is not a list of usable Fernet keys",
        fixed={},
    ),
}


@pytest.fixture(params=list(BREAKS))
def lost(request) -> Break:
    return BREAKS[request.param]


@pytest.fixture
def device(user, make_device, lost) -> TOTPDevice:
    """alice's confirmed device, written under the keys that ``lost`` loses."""
    with override_settings(**lost.written):
        return make_device(user)


def stored_token(device: TOTPDevice) -> str:
    """The secret column as the database holds it (the Fernet token)."""
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn('secret')} FROM {qn(TOTPDevice._meta.db_table)} WHERE {qn('id')} = %s",
            [device.pk],
        )
        return cursor.fetchone()[0]


def errors_logged(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "drf_totp" and r.levelno >= logging.ERROR]


def assert_reported(caplog, device: TOTPDevice, secret: str, cause: str) -> None:
    """One ERROR line names the device, its user and the cause; none carries the secret."""
    [record] = errors_logged(caplog)
    line = record.getMessage()
    assert f"TOTP device {device.pk} (user {device.user_id})" in line
    assert cause in line
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert secret not in text
        assert stored_token(device) not in text


# --- login/ reads no secret --------------------------------------------------------------------


def test_login_still_issues_a_ticket_and_reads_no_secret(
    api_client, user, password, device, lost, caplog
):
    with override_settings(**lost.broken), CaptureQueriesContext(connection) as queries:
        response = post(api_client, LOGIN, {"username": "alice", "password": password})

    assert response.status_code == 200, response.content
    assert response.json()["mfa_required"] is True
    reads = [q["sql"] for q in queries if TOTPDevice._meta.db_table in q["sql"]]
    secret_column = connection.ops.quote_name("secret")
    assert reads and not any(secret_column in sql for sql in reads), reads
    assert errors_logged(caplog) == []


# --- code endpoints: 503 secret_unavailable and one ERROR line --------------------------------


@pytest.mark.parametrize("url", [VALIDATE, DISABLE, RECOVERY_CODES])
def test_code_endpoints_answer_503_and_log_the_device_and_cause(
    auth_client, device, lost, url, caplog
):
    code, secret = current_code(device), device.secret

    with override_settings(**lost.broken):
        response = post_token(auth_client, url, code)

    assert_error(response, 503, "secret_unavailable")
    assert_reported(caplog, device, secret, lost.cause)
    after = TOTPDevice.objects.get(pk=device.pk)
    # Nothing was evaluated, so nothing was counted or used up.
    assert (after.failure_count, after.use_count, after.last_used_step) == (0, 0, 0)


def test_verify_of_a_pending_device_answers_503(auth_client, user, make_device, lost, caplog):
    with override_settings(**lost.written):
        pending = make_device(user, confirmed=False)
    code, secret = current_code(pending), pending.secret

    with override_settings(**lost.broken):
        response = post_token(auth_client, VERIFY, code)

    assert_error(response, 503, "secret_unavailable")
    assert_reported(caplog, pending, secret, lost.cause)
    assert not TOTPDevice.objects.get(pk=pending.pk).is_confirmed


def test_login_verify_answers_503_and_the_ticket_works_once_the_keys_are_fixed(
    api_client, user, password, device, lost, caplog
):
    code, secret = current_code(device), device.secret
    with override_settings(**lost.broken):
        ticket = start_login(api_client, user, password)

        response = redeem(api_client, ticket, code)

    assert_error(response, 503, "secret_unavailable")
    assert_reported(caplog, device, secret, lost.cause)
    # Neither the code nor the ticket was used up.
    with override_settings(**lost.fixed):
        assert redeem(api_client, ticket, code).status_code == 200


def test_a_recovery_code_still_logs_in_when_the_secret_cannot_be_decrypted(
    api_client, user, password, make_device
):
    """A recovery code needs no TOTP secret: this is what recovery codes are for. (Their digests
    are keyed with SECRET_KEY and its fallbacks, which this break leaves alone.)"""
    make_device(user)
    codes = recovery.issue(user, timezone.now())

    with override_settings(TOTP_ENCRYPTION_KEYS=["not-a-fernet-key"]):
        ticket = start_login(api_client, user, password)
        response = redeem(api_client, ticket, codes[0])

    assert response.status_code == 200, response.content


# A transaction of its own: Django marks the test's transaction for rollback when an UPDATE
# fails, even before it reaches the database (outside a test, the view runs in autocommit).
@pytest.mark.django_db(transaction=True)
def test_generate_with_unusable_keys_answers_503_and_logs_the_cause(auth_client, user, caplog):
    with override_settings(TOTP_ENCRYPTION_KEYS=["not-a-fernet-key"]):
        response = post(auth_client, GENERATE)

    assert_error(response, 503, "secret_unavailable")
    [record] = errors_logged(caplog)
    assert "cannot encrypt a TOTP secret" in record.getMessage()
    assert "TOTP_ENCRYPTION_KEYS" in record.getMessage()
    assert not TOTPDevice.objects.filter(user=user).exists()


def test_once_the_keys_are_fixed_nothing_is_reported(auth_client, device, lost, caplog):
    with override_settings(**lost.fixed):
        response = post_token(auth_client, VALIDATE, current_code(device))

    assert response.status_code == 200, response.content
    assert errors_logged(caplog) == []


# --- the database check ------------------------------------------------------------------------


def database_messages() -> list[checks.CheckMessage]:
    """What the secrets check says (an unusable key also gets E001, from the settings check)."""
    return [m for m in checks.run_checks(databases=["default"]) if m.id == "drf_totp.E011"]


def test_database_check_passes_when_the_secrets_decrypt(user, make_device):
    make_device(user)

    assert database_messages() == []
    call_command("check", "--database", "default")


def test_database_check_reports_the_secrets_it_cannot_decrypt(user, device, lost):
    with override_settings(**lost.broken):
        [message] = database_messages()
        with pytest.raises(SystemCheckError, match=r"drf_totp\.E011"):
            call_command("check", "--database", "default")

    assert message.level == checks.ERROR
    assert message.id == "drf_totp.E011"
    assert "1 of 1 TOTP secrets sampled in database 'default' cannot be decrypted" in message.msg
    assert f"(devices {device.pk})" in message.msg
    assert lost.cause in message.msg
    assert "totp_rotate_keys" in message.hint


def test_database_check_samples_the_oldest_secret_too(django_user_model, make_device):
    """Only the oldest device predates the change of keys; the newest ones decrypt."""
    users = [django_user_model.objects.create_user(username=f"u{i}") for i in range(8)]
    with override_settings(TOTP_ENCRYPTION_KEYS=[OLD_KEY]):
        oldest = make_device(users[0])
    for user in users[1:]:
        make_device(user)

    with override_settings(TOTP_ENCRYPTION_KEYS=[NEW_KEY]):
        [message] = database_messages()

    assert "1 of 6 TOTP secrets" in message.msg
    assert f"(devices {oldest.pk})" in message.msg


def test_plain_check_does_not_touch_the_database(user, make_device):
    """Without --database, Django runs no database check: the secret check is not run."""
    make_device(user)
    with override_settings(SECRET_KEY=NEW_SECRET_KEY, SECRET_KEY_FALLBACKS=[]):
        messages = [m for m in checks.run_checks() if (m.id or "").startswith("drf_totp.E")]

    assert messages == []


# --- totp_rotate_keys --------------------------------------------------------------------------


def test_rotate_keys_names_what_it_cannot_decrypt_rotates_the_rest_and_fails(
    user, other_user, make_device
):
    with override_settings(TOTP_ENCRYPTION_KEYS=[OLD_KEY]):
        lost = make_device(user)
    kept = make_device(other_user)  # under the SECRET_KEY, which stays
    out, err = StringIO(), StringIO()

    with override_settings(TOTP_ENCRYPTION_KEYS=[NEW_KEY]):
        with pytest.raises(CommandError) as raised:
            call_command("totp_rotate_keys", stdout=out, stderr=err)

    assert raised.value.returncode == 1  # manage.py exits with it
    assert f"devices {lost.pk}" in str(raised.value)
    assert f"TOTP device {lost.pk} of user 'alice' (id {user.pk})" in err.getvalue()
    assert "SECRET_KEY_FALLBACKS" in err.getvalue()
    assert "bob" not in err.getvalue()
    assert "Re-encrypted 1 secret(s)" in out.getvalue()
    assert Fernet(NEW_KEY).decrypt(stored_token(kept).encode()).decode() == kept.secret
    with override_settings(TOTP_ENCRYPTION_KEYS=[OLD_KEY]):  # left exactly as it was
        assert TOTPDevice.objects.get(pk=lost.pk).secret == lost.secret


def test_rotate_keys_sets_the_weak_flag_anew(user, make_device):
    device = make_device(user, secret="JBSWY3DPEHPK3PXP")
    TOTPDevice.objects.filter(pk=device.pk).update(weak_secret=False)  # e.g. unreadable once

    call_command("totp_rotate_keys", stdout=StringIO())

    assert TOTPDevice.objects.get(pk=device.pk).weak_secret is True


# --- seen with Django's default logging ------------------------------------------------------------

SCRIPT = """
import django
django.setup()
from cryptography.fernet import Fernet
from drf_totp.exceptions import SecretUnavailable
from drf_totp.models import TOTPDevice

token = Fernet(Fernet.generate_key()).encrypt(b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").decode()
device = TOTPDevice(pk=7, user_id=12)
device.secret = TOTPDevice._meta.get_field("secret").from_db_value(token, None, None)
try:
    device.totp()
except SecretUnavailable:
    pass
"""


@pytest.mark.django_db(databases=[])
def test_the_error_line_reaches_stderr_with_djangos_default_logging():
    """The test settings configure no LOGGING, as a new project: Python's last-resort handler
    writes the line to stderr, which every process manager keeps."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert "drf_totp: cannot decrypt the secret of TOTP device 7 (user 12)" in done.stderr
    assert "SECRET_KEY_FALLBACKS" in done.stderr
    assert "JBSWY3DP" not in done.stderr
