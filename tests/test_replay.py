"""Issue #3, item 2: a code is accepted once, monotonically. After a success at step s, a code of
any step <= s is refused with ``token_reused`` on every endpoint that takes a code, and such a
replay is not counted as a wrong guess. The check and the write are one conditional UPDATE, so a
check that read the device before another request accepted the step is refused too.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from drf_totp import exceptions, verification
from drf_totp.models import TOTPDevice
from tests.code_checks import (
    DISABLE,
    RECOVERY_CODES,
    VALIDATE,
    VERIFY,
    assert_error,
    code_for_step,
    post_token,
    redeem,
    reload,
    start_login,
    step_at,
    wrong_code,
)

pytestmark = pytest.mark.usefixtures("clock", "no_throttles")


def login_with_code(user, password, code):
    """Both steps of the two-step login, the password first (so the ticket is fresh)."""
    client = APIClient()
    ticket = start_login(client, user, password)
    return redeem(client, ticket, code)


@pytest.fixture
def send(auth_client, user, password):
    """``send(endpoint, code)``: post ``code`` to one of the endpoints that take a code."""

    def send(endpoint: str, code: str):
        if endpoint == "login":
            return login_with_code(user, password, code)
        url = {"verify": VERIFY, "validate": VALIDATE, "disable": DISABLE}.get(endpoint)
        return post_token(auth_client, url or RECOVERY_CODES, code)

    return send


@pytest.fixture
def device(user, make_device):
    return make_device(user)


# Endpoints that accept a code and keep the device, and every endpoint a replay can be sent to.
ACCEPTING = ["verify", "validate", "recovery-codes", "login"]
REPLAYED_ON = ["validate", "disable", "recovery-codes", "login"]


@pytest.mark.parametrize("replayed_on", REPLAYED_ON)
@pytest.mark.parametrize("accepted_by", ACCEPTING)
def test_codes_up_to_the_accepted_step_are_refused_as_reused_everywhere(
    send, user, make_device, accepted_by, replayed_on
):
    device = make_device(user, confirmed=accepted_by != "verify")
    accepted = step_at(device) + 1
    assert send(accepted_by, code_for_step(device, accepted)).status_code == 200

    for step in (accepted - 2, accepted - 1, accepted):
        response = send(replayed_on, code_for_step(device, step))

        assert_error(response, 400, "token_reused", field="token")
    after = reload(device)
    assert after is not None, "a replayed code disabled 2FA"
    assert after.is_confirmed
    assert (after.last_used_step, after.failure_count) == (accepted, 0)


def test_code_of_a_later_step_is_accepted_after_an_earlier_one(auth_client, device):
    """Monotonic, not single-step: each newer step in the window is still accepted once."""
    now = step_at(device)

    for step in (now - 1, now, now + 1):
        response = post_token(auth_client, VALIDATE, code_for_step(device, step))

        assert response.status_code == 200, response.content
        assert reload(device).last_used_step == step


def test_replay_is_not_counted_as_a_wrong_guess(auth_client, device, clock):
    code = code_for_step(device, step_at(device))
    assert post_token(auth_client, VALIDATE, code).status_code == 200
    # Four wrong codes are free; one more counted failure would lock the user.
    for _ in range(4):
        assert_error(post_token(auth_client, VALIDATE, wrong_code(device)), 400, "invalid_token")

    for _ in range(5):
        assert_error(post_token(auth_client, VALIDATE, code), 400, "token_reused", field="token")

    after = reload(device)
    assert (after.failure_count, after.locked_until) == (4, None)
    clock.shift(30)
    assert (
        post_token(auth_client, VALIDATE, code_for_step(device, step_at(device))).status_code == 200
    )


def test_check_that_read_the_device_before_another_acceptance_is_refused_as_reused(
    auth_client, device
):
    code = code_for_step(device, step_at(device))
    stale = TOTPDevice.objects.get(pk=device.pk)  # read before the other request's success
    assert post_token(auth_client, VALIDATE, code).status_code == 200

    with pytest.raises(exceptions.TokenReused):
        verification.check(stale, code)

    after = reload(device)
    assert (after.last_used_step, after.failure_count, after.use_count) == (step_at(device), 0, 1)


def test_disable_that_read_the_device_before_another_acceptance_deletes_nothing(
    auth_client, device
):
    code = code_for_step(device, step_at(device))
    stale = TOTPDevice.objects.get(pk=device.pk)
    assert post_token(auth_client, VALIDATE, code).status_code == 200

    with pytest.raises(exceptions.TokenReused):
        verification.check(stale, code, action=lambda accepted: accepted.row().delete()[0])

    assert reload(device) is not None
