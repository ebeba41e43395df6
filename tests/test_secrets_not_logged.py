"""Issue #3, item 9: logs and signals never contain a code or a secret.

One user goes through every path a code takes (enroll, validate, wrong codes up to a lock, a
refused code while locked, a lock-out, an administrator's unlock, a recovery code, new recovery codes,
disable) while every log record at DEBUG, SQL included, and every signal of the package is
captured. None may contain the TOTP secret, any code sent, or any recovery code.
"""

from __future__ import annotations

import logging
import re

import pytest
from django.db import connection
from django.dispatch import Signal
from django.test.utils import CaptureQueriesContext

from drf_totp import devices, signals
from drf_totp.models import TOTPDevice
from tests.code_checks import (
    DISABLE,
    GENERATE,
    RECOVERY_CODES,
    VALIDATE,
    VERIFY,
    current_code,
    post_token,
    wrong_code,
)

pytestmark = [
    # Signals are sent on commit: in autocommit, at once.
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("clock", "no_throttles"),
]

PACKAGE_SIGNALS = {
    name: value for name, value in vars(signals).items() if isinstance(value, Signal)
}


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict]]:
    """Every signal of the package sent during the test: (name, keyword arguments)."""
    captured: list[tuple[str, dict]] = []
    for name, signal in PACKAGE_SIGNALS.items():

        def receiver(signal=None, sender=None, _name=name, **kwargs):
            captured.append((_name, kwargs))

        signal.connect(receiver, weak=False, dispatch_uid=f"test-secrets-{name}")
    yield captured
    for name, signal in PACKAGE_SIGNALS.items():
        signal.disconnect(dispatch_uid=f"test-secrets-{name}")


class Sent:
    """Every code and secret that went over the wire in the test."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.codes: set[str] = set()

    def code(self, code: str) -> str:
        self.codes.add(code)
        return code

    def recovery_codes(self, codes: list[str]) -> list[str]:
        for code in codes:
            self.secrets.update({code, code.replace("-", "")})
        return codes

    def found_in(self, text: str) -> list[str]:
        # A 6-digit code only counts as a whole number, not inside a longer one (a step, an id).
        found = [code for code in self.codes if re.search(rf"(?<![0-9]){code}(?![0-9])", text)]
        return found + [secret for secret in self.secrets if secret.lower() in text.lower()]


def everything_a_code_goes_through(client, user, clock, sent: Sent) -> None:
    generated = client.post(GENERATE, format="json")
    assert generated.status_code == 200
    sent.secrets.add(generated.json()["secret"])
    device = TOTPDevice.objects.get(user=user)

    enabled = post_token(client, VERIFY, sent.code(current_code(device)))
    assert enabled.status_code == 200, enabled.content
    recovery = sent.recovery_codes(enabled.json()["recovery_codes"])
    clock.shift(30)
    assert post_token(client, VALIDATE, sent.code(current_code(device))).status_code == 200

    for _ in range(5):
        assert post_token(client, VALIDATE, sent.code(wrong_code(device))).status_code == 400
    locked = post_token(client, VALIDATE, sent.code(current_code(device)))
    assert locked.status_code == 429
    clock.shift(30)
    # The 6th failure reaches TOTP_MAX_FAILURES (6 in this test): locked out.
    assert post_token(client, VALIDATE, sent.code(wrong_code(device))).status_code == 400
    assert devices.unlock(user)
    clock.shift(30)

    assert post_token(client, VALIDATE, sent.code(current_code(device))).status_code == 200
    assert post_token(client, VALIDATE, recovery[0]).status_code == 200
    clock.shift(30)
    renewed = post_token(client, RECOVERY_CODES, sent.code(current_code(device)))
    assert renewed.status_code == 200
    sent.recovery_codes(renewed.json()["recovery_codes"])
    clock.shift(30)
    assert post_token(client, DISABLE, sent.code(current_code(device))).status_code == 200


def test_no_log_record_and_no_signal_carries_a_code_or_a_secret(
    auth_client, user, clock, caplog, sent, settings
):
    settings.TOTP_MAX_FAILURES = 6
    for name in (None, "django", "drf_totp"):  # Django's own logging config stops "django" at INFO
        caplog.set_level(logging.DEBUG, logger=name)
    secrets_sent = Sent()
    # Query logging on: SQL and its parameters are logged at DEBUG by django.db.backends.
    with CaptureQueriesContext(connection):
        everything_a_code_goes_through(auth_client, user, clock, secrets_sent)

    assert {name for name, _ in sent} == set(PACKAGE_SIGNALS), "a signal was not exercised"
    assert any(r.name == "drf_totp" for r in caplog.records), "the package logged nothing"
    assert any(r.name == "django.db.backends" for r in caplog.records), "SQL was not logged"
    for record in caplog.records:
        text = " ".join([caplog.handler.format(record), repr(record.args), repr(vars(record))])
        assert secrets_sent.found_in(text) == [], record.getMessage()
    for name, kwargs in sent:
        # The request is the request: its body holds the code by nature. The rest must not.
        text = repr({key: value for key, value in kwargs.items() if key != "request"})
        assert secrets_sent.found_in(text) == [], (name, text)
