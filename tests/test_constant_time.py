"""Issue #3, item 6: the code is compared in constant time with the code of every step of the
window, in order, whether or not an earlier step matched, so the time taken does not tell which
step (if any) matched. ``hmac.compare_digest`` is replaced in ``drf_totp.otp``'s namespace by a
spy that records each comparison and returns the real answer.
"""

from __future__ import annotations

import hmac
from types import SimpleNamespace

import pytest
from django.test import override_settings

from drf_totp import otp
from tests.code_checks import (
    CODE_ENDPOINTS,
    code_for_step,
    device_for,
    post_token,
    step_at,
    totp_of,
    wrong_code,
)

pytestmark = pytest.mark.usefixtures("clock", "no_throttles")

OFFSETS = {"T-1": -1, "T": 0, "T+1": 1, "no step": None}


@pytest.fixture
def comparisons(monkeypatch) -> list[tuple[bytes, bytes]]:
    calls: list[tuple[bytes, bytes]] = []

    def compare_digest(a, b):
        calls.append((a, b))
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(otp, "hmac", SimpleNamespace(compare_digest=compare_digest))
    return calls


def code_matching(device, offset: int | None) -> str:
    now = step_at(device)
    return wrong_code(device) if offset is None else code_for_step(device, now + offset)


def assert_whole_window_compared(comparisons, device, code: str, window: int) -> None:
    now = step_at(device)
    expected = [code_for_step(device, s).encode() for s in range(now - window, now + window + 1)]
    assert [computed for computed, _ in comparisons] == expected
    assert [sent for _, sent in comparisons] == [code.encode()] * len(expected)
    assert all(isinstance(a, bytes) and len(a) == len(b) for a, b in comparisons)


@pytest.mark.parametrize("offset", OFFSETS.values(), ids=OFFSETS.keys())
def test_matching_step_compares_every_step_of_the_window_whichever_matches(
    user, make_device, comparisons, offset
):
    device = device_for("validate", user, make_device)
    code = code_matching(device, offset)

    found = otp.matching_step(totp_of(device), code, step_at(device), 1)

    assert found == (None if offset is None else step_at(device) + offset)
    assert_whole_window_compared(comparisons, device, code, window=1)


def test_matching_step_with_window_zero_compares_one_step(user, make_device, comparisons):
    device = device_for("validate", user, make_device)
    code = code_for_step(device, step_at(device))

    assert otp.matching_step(totp_of(device), code, step_at(device), 0) == step_at(device)
    assert_whole_window_compared(comparisons, device, code, window=0)


@pytest.mark.parametrize("endpoint", list(CODE_ENDPOINTS))
@pytest.mark.parametrize("offset", OFFSETS.values(), ids=OFFSETS.keys())
def test_every_endpoint_compares_the_whole_window(
    auth_client, user, make_device, comparisons, endpoint, offset
):
    device = device_for(endpoint, user, make_device)
    code = code_matching(device, offset)

    response = post_token(auth_client, CODE_ENDPOINTS[endpoint], code)

    assert response.status_code == (400 if offset is None else 200), response.content
    assert_whole_window_compared(comparisons, device, code, window=1)


@override_settings(TOTP_VALID_WINDOW=0)
@pytest.mark.parametrize("offset", [0, None], ids=["T", "no step"])
def test_window_zero_compares_the_current_step_only(
    auth_client, user, make_device, comparisons, offset
):
    device = device_for("validate", user, make_device)
    code = code_matching(device, offset)

    post_token(auth_client, CODE_ENDPOINTS["validate"], code)

    assert_whole_window_compared(comparisons, device, code, window=0)
