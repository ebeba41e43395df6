"""Issue 11, item 5: ``disable/`` with ``TOTP_DISABLE_REQUIRES_PASSWORD`` is not a password oracle.

The guess is reserved first; then the code and the password are both checked, always, so neither
the answer nor its timing tells which one was wrong. A wrong password counts in the same guess
budget as a wrong code, and every refusal is one and the same ``invalid_code_or_password``
(in ``non_field_errors``), with the lock details when the failure started a lock. A locked user
gets ``locked`` before the password is even checked.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from drf_totp import recovery, verification
from tests.code_checks import (
    DISABLE,
    VALIDATE,
    assert_error,
    current_code,
    post,
    reload,
    wrong_code,
)

pytestmark = pytest.mark.usefixtures("clock", "no_throttles")

WRONG_PASSWORD = "not the password"


@pytest.fixture(autouse=True)
def password_required(settings):
    settings.TOTP_DISABLE_REQUIRES_PASSWORD = True


@pytest.fixture
def device(user, make_device):
    return make_device(user)


@pytest.fixture
def checked(monkeypatch) -> list[str]:
    """What each request checked, in order: "password" and "code" (a TOTP window or a recovery
    code's digests)."""
    seen: list[str] = []
    user_model = get_user_model()
    real_password = user_model.check_password
    real_step = verification.otp.matching_step
    real_lookup = verification.recovery.lookup

    def check_password(self, raw):
        seen.append("password")
        return real_password(self, raw)

    def matching_step(*args, **kwargs):
        seen.append("code")
        return real_step(*args, **kwargs)

    def lookup(*args, **kwargs):
        found = real_lookup(*args, **kwargs)
        if found is not None:  # the digests a recovery code is checked against
            seen.append("code")
        return found

    monkeypatch.setattr(user_model, "check_password", check_password)
    monkeypatch.setattr(verification.otp, "matching_step", matching_step)
    monkeypatch.setattr(verification.recovery, "lookup", lookup)
    return seen


def disable(client, token: str, password: str):
    return post(client, DISABLE, {"token": token, "password": password})


def refusal(response) -> dict:
    body = assert_error(response, 400, "invalid_code_or_password")
    assert list(body["errors"]) == ["non_field_errors"], body
    return body


def test_every_wrong_combination_gets_the_same_answer_and_counts_once(
    auth_client, user, password, device, clock, settings
):
    settings.TOTP_FREE_FAILURES = 10  # no lock on the way
    used = current_code(device)
    assert post(auth_client, VALIDATE, {"token": used}).status_code == 200
    clock.shift(30)
    codes = recovery.issue(user, timezone.now())
    assert post(auth_client, VALIDATE, {"token": codes[1]}).status_code == 200
    clock.shift(30)
    right = current_code(device)
    wrong = wrong_code(device)
    attempts = {
        "right code, wrong password": (right, WRONG_PASSWORD),
        "wrong code, right password": (wrong, password),
        "wrong code, wrong password": (wrong, WRONG_PASSWORD),
        "used code, right password": (used, password),
        "used code, wrong password": (used, WRONG_PASSWORD),
        "recovery code, wrong password": (codes[0], WRONG_PASSWORD),
        "used recovery code, right password": (codes[1], password),
    }

    bodies = {}
    for count, (name, (token, secret)) in enumerate(attempts.items(), start=1):
        bodies[name] = refusal(disable(auth_client, token, secret))
        assert reload(device).failure_count == count, name

    assert len({repr(body) for body in bodies.values()}) == 1, bodies
    # Nothing was spent: the right code and the recovery code still work (the count is reset).
    assert disable(auth_client, codes[0], password).status_code == 200


def test_a_wrong_password_and_a_wrong_code_spend_one_budget(auth_client, password, device):
    for _ in range(2):
        refusal(disable(auth_client, current_code(device), WRONG_PASSWORD))
        refusal(disable(auth_client, wrong_code(device), password))

    fifth = refusal(disable(auth_client, current_code(device), WRONG_PASSWORD))

    # The 5th failure started the 30 s lock, and the answer says so at once.
    assert fifth["retry_after"] == 30
    assert fifth["locked_until"] == reload(device).locked_until.isoformat()
    assert reload(device).failure_count == 5


def test_both_the_code_and_the_password_are_always_checked(
    auth_client, user, password, device, checked
):
    codes = recovery.issue(user, timezone.now())
    for token, secret in [
        (current_code(device), WRONG_PASSWORD),
        (wrong_code(device), password),
        (codes[0], WRONG_PASSWORD),
    ]:
        checked.clear()
        refusal(disable(auth_client, token, secret))
        assert sorted(checked) == ["code", "password"], (token, secret)


def test_a_locked_user_gets_locked_before_the_password_is_checked(
    auth_client, password, device, checked
):
    for _ in range(5):
        refusal(disable(auth_client, wrong_code(device), WRONG_PASSWORD))
    checked.clear()

    response = disable(auth_client, current_code(device), password)

    assert_error(response, 429, "locked")
    assert checked == []
    assert reload(device).failure_count == 5
