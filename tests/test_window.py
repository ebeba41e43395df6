"""Issue #3, item 1: the window. Codes of steps T-1..T+1 are accepted by default, only T's with
``TOTP_VALID_WINDOW = 0``; a code two steps away is a wrong code, on every endpoint that takes one.
"""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from tests.code_checks import (
    CODE_ENDPOINTS,
    assert_error,
    code_for_step,
    device_for,
    post_token,
    reload,
    step_at,
)

pytestmark = pytest.mark.usefixtures("clock")


@pytest.fixture(params=list(CODE_ENDPOINTS))
def endpoint(request) -> str:
    return request.param


@pytest.fixture
def device(endpoint, user, make_device):
    return device_for(endpoint, user, make_device)


def assert_accepted(response, endpoint: str, device, step: int) -> None:
    assert response.status_code == 200, response.content
    after = reload(device)
    if endpoint == "disable":
        assert after is None
    else:
        assert after.is_confirmed
        assert after.last_used_step == step
        assert after.failure_count == 0


def assert_refused_as_wrong(response, device) -> None:
    assert_error(response, 400, "invalid_token", field="token")
    after = reload(device)
    assert after is not None
    assert after.failure_count == 1
    assert after.last_used_step == 0
    assert after.is_confirmed == device.is_confirmed


def test_the_steps_around_now_have_distinct_codes(user, make_device):
    """The premise of this file: with SECRET at the frozen time, T-2..T+2 all differ."""
    device = device_for("validate", user, make_device)
    step = step_at(device)

    assert len({code_for_step(device, step + offset) for offset in range(-2, 3)}) == 5


@pytest.mark.parametrize("offset", [-1, 0, 1], ids=["T-1", "T", "T+1"])
def test_code_of_a_step_next_to_now_is_accepted(auth_client, endpoint, device, offset):
    step = step_at(device) + offset

    response = post_token(auth_client, CODE_ENDPOINTS[endpoint], code_for_step(device, step))

    assert_accepted(response, endpoint, device, step)


@pytest.mark.parametrize("offset", [-2, 2], ids=["T-2", "T+2"])
def test_code_two_steps_from_now_is_refused_as_wrong(auth_client, endpoint, device, offset):
    code = code_for_step(device, step_at(device) + offset)

    response = post_token(auth_client, CODE_ENDPOINTS[endpoint], code)

    assert_refused_as_wrong(response, device)


@override_settings(TOTP_VALID_WINDOW=0)
def test_window_zero_accepts_the_current_step(auth_client, endpoint, device):
    step = step_at(device)

    response = post_token(auth_client, CODE_ENDPOINTS[endpoint], code_for_step(device, step))

    assert_accepted(response, endpoint, device, step)


@override_settings(TOTP_VALID_WINDOW=0)
@pytest.mark.parametrize("offset", [-1, 1], ids=["T-1", "T+1"])
def test_window_zero_refuses_the_neighbouring_steps(auth_client, endpoint, device, offset):
    code = code_for_step(device, step_at(device) + offset)

    response = post_token(auth_client, CODE_ENDPOINTS[endpoint], code)

    assert_refused_as_wrong(response, device)


@pytest.mark.parametrize("seconds_into_step", [0, 29])
def test_window_is_counted_in_steps_from_the_servers_clock(
    auth_client, user, make_device, clock, seconds_into_step
):
    """Anywhere in step T, T-1 is in the window and T-2 is not."""
    device = device_for("validate", user, make_device)
    clock.shift(seconds_into_step)
    step = step_at(device)

    too_old = post_token(auth_client, CODE_ENDPOINTS["validate"], code_for_step(device, step - 2))
    oldest = post_token(auth_client, CODE_ENDPOINTS["validate"], code_for_step(device, step - 1))

    assert_error(too_old, 400, "invalid_token", field="token")
    assert oldest.status_code == 200, oldest.content
    assert reload(device).last_used_step == step - 1


@pytest.mark.parametrize("window,errors", [(0, set()), (1, set()), (2, {"drf_totp.E002"})])
def test_only_a_window_of_0_or_1_passes_the_checks(settings, window, errors):
    settings.TOTP_VALID_WINDOW = window

    assert {m.id for m in run_checks() if m.id.startswith("drf_totp.")} == errors
