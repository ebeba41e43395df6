"""Issue #3, item 7: the second layer. DRF throttles on the endpoints that take a code, per user
(``totp_user``, default 10/min) and per client IP (``totp_ip``, default 30/min), with rates read
from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` on each request; and the system checks that warn
about settings that weaken the first layer (drf_totp.W001..W004).

Throttles keep their history in the cache: with DummyCache they cannot count, so those tests are
skipped there (the first layer does not need a cache; see test_races.py and test_lockout.py).
"""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from rest_framework.test import APIClient

from tests.code_checks import (
    CODE_ENDPOINTS,
    VALIDATE,
    assert_error,
    current_code,
    device_for,
    post_token,
    wrong_code,
)

pytestmark = pytest.mark.usefixtures("clock")

# Well-formed JSON, malformed code: a 400 that writes nothing, so only the throttle counts it.
MALFORMED = "not-a-code"


@pytest.fixture
def rates(settings):
    """``rates(totp_user=..., totp_ip=...)``: set REST_FRAMEWORK's throttle rates now."""

    def set_rates(**scopes):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": scopes}

    return set_rates


def client_of(user, ip: str = "10.0.0.1", **headers) -> APIClient:
    client = APIClient(REMOTE_ADDR=ip, **headers)
    client.force_authenticate(user=user)
    return client


def attempt(client, url: str = VALIDATE):
    return post_token(client, url, MALFORMED)


def assert_passed(response) -> None:
    assert_error(response, 400, "invalid_format", field="token")


def assert_throttled(response) -> None:
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


@pytest.fixture
def alice(user, make_device):
    device_for("validate", user, make_device)
    return user


@pytest.fixture
def users_with_2fa(django_user_model, make_device):
    def make(count: int) -> list:
        users = []
        for index in range(count):
            user = django_user_model.objects.create_user(username=f"user{index}", password="x")
            device_for("validate", user, make_device)
            users.append(user)
        return users

    return make


@pytest.mark.usefixtures("counting_cache")
def test_a_user_gets_10_code_attempts_a_minute_by_default(alice, clock):
    client = client_of(alice)
    for _ in range(10):
        assert_passed(attempt(client))

    assert_throttled(attempt(client))
    clock.shift(60)
    assert_passed(attempt(client))


@pytest.mark.usefixtures("counting_cache")
def test_a_client_ip_gets_30_code_attempts_a_minute_by_default(users_with_2fa):
    clients = [client_of(user) for user in users_with_2fa(4)]  # 8 each: under 10 per user
    answers = [attempt(client) for client in clients for _ in range(8)]

    for response in answers[:30]:
        assert_passed(response)
    for response in answers[30:]:
        assert_throttled(response)


@pytest.mark.usefixtures("counting_cache")
def test_rates_set_in_settings_take_effect_on_the_next_request(alice, rates):
    client = client_of(alice)
    rates(totp_user="2/min", totp_ip=None)
    assert_passed(attempt(client))
    assert_passed(attempt(client))
    assert_throttled(attempt(client))

    rates(totp_user="4/min", totp_ip=None)

    assert_passed(attempt(client))
    assert_passed(attempt(client))
    assert_throttled(attempt(client))


@pytest.mark.usefixtures("counting_cache")
def test_the_user_scope_follows_the_user_across_ips(alice, other_user, make_device, rates):
    device_for("validate", other_user, make_device)
    rates(totp_user="3/min", totp_ip=None)
    for index in range(3):
        assert_passed(attempt(client_of(alice, ip=f"10.0.0.{index}")))

    assert_throttled(attempt(client_of(alice, ip="10.0.0.9")))
    assert_passed(attempt(client_of(other_user, ip="10.0.0.9")))


@pytest.mark.usefixtures("counting_cache")
def test_the_ip_scope_counts_every_user_behind_one_ip(users_with_2fa, rates):
    first, second, third = users_with_2fa(3)
    rates(totp_user=None, totp_ip="3/min")
    assert_passed(attempt(client_of(first, ip="10.0.0.1")))
    assert_passed(attempt(client_of(first, ip="10.0.0.1")))
    assert_passed(attempt(client_of(second, ip="10.0.0.1")))

    assert_throttled(attempt(client_of(second, ip="10.0.0.1")))
    assert_passed(attempt(client_of(third, ip="10.0.0.2")))


@pytest.mark.usefixtures("counting_cache")
def test_with_num_proxies_set_a_forged_x_forwarded_for_does_not_reset_the_ip_scope(
    users_with_2fa, settings
):
    """DRF reads the client IP as NUM_PROXIES says; 0 means no proxy: REMOTE_ADDR only."""
    users = users_with_2fa(4)
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "NUM_PROXIES": 0,
        "DEFAULT_THROTTLE_RATES": {"totp_user": None, "totp_ip": "3/min"},
    }
    for index, user in enumerate(users[:3]):
        forged = {"HTTP_X_FORWARDED_FOR": f"203.0.113.{index}"}
        assert_passed(attempt(client_of(user, ip="10.0.0.1", **forged)))

    forged = {"HTTP_X_FORWARDED_FOR": "203.0.113.99"}
    assert_throttled(attempt(client_of(users[3], ip="10.0.0.1", **forged)))


@pytest.fixture
def num_proxies(settings):
    """``num_proxies(n)``: set DRF's NUM_PROXIES (None: unset, DRF's default)."""

    def set_num_proxies(value):
        framework = {k: v for k, v in settings.REST_FRAMEWORK.items() if k != "NUM_PROXIES"}
        if value is not None:
            framework["NUM_PROXIES"] = value
        settings.REST_FRAMEWORK = framework

    return set_num_proxies


@pytest.mark.usefixtures("counting_cache")
def test_without_num_proxies_a_forged_x_forwarded_for_does_not_reset_the_ip_scope(
    users_with_2fa, rates, num_proxies
):
    """Issue 11.4: DRF alone would key each request below on the header the client chose."""
    num_proxies(None)
    rates(totp_user=None, totp_ip="3/min")
    users = users_with_2fa(4)
    for index, user in enumerate(users[:3]):
        forged = {"HTTP_X_FORWARDED_FOR": f"203.0.113.{index}"}
        assert_passed(attempt(client_of(user, ip="10.0.0.1", **forged)))

    forged = {"HTTP_X_FORWARDED_FOR": "203.0.113.99"}
    assert_throttled(attempt(client_of(users[3], ip="10.0.0.1", **forged)))


@pytest.mark.usefixtures("counting_cache")
def test_without_num_proxies_a_client_cannot_spend_another_ips_budget(
    users_with_2fa, rates, num_proxies
):
    num_proxies(None)
    rates(totp_user=None, totp_ip="3/min")
    attacker, victim = users_with_2fa(2)
    as_victim = {"HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    for _ in range(3):
        assert_passed(attempt(client_of(attacker, ip="10.0.0.66", **as_victim)))
    assert_throttled(attempt(client_of(attacker, ip="10.0.0.66", **as_victim)))

    assert_passed(attempt(client_of(victim, ip="198.51.100.7")))


@pytest.mark.usefixtures("counting_cache")
def test_with_one_proxy_the_address_it_appends_is_the_client_ip(users_with_2fa, rates, num_proxies):
    """As DRF reads it: the last address of X-Forwarded-For, the one the proxy added; what the
    client put before it does not count."""
    num_proxies(1)
    rates(totp_user=None, totp_ip="2/min")
    users = users_with_2fa(4)
    proxy = "10.0.0.1"
    for index, user in enumerate(users[:2]):
        header = {"HTTP_X_FORWARDED_FOR": f"203.0.113.{index}, 198.51.100.7"}
        assert_passed(attempt(client_of(user, ip=proxy, **header)))
    header = {"HTTP_X_FORWARDED_FOR": "203.0.113.50, 198.51.100.7"}
    assert_throttled(attempt(client_of(users[2], ip=proxy, **header)))

    another_client = {"HTTP_X_FORWARDED_FOR": "198.51.100.8"}
    assert_passed(attempt(client_of(users[3], ip=proxy, **another_client)))


@pytest.mark.parametrize("value,warned", [(None, True), (0, False), (1, False)])
def test_check_warns_while_num_proxies_is_unset(num_proxies, value, warned):
    """Issue 11.4: in every ``check`` (runserver, migrate, ...), not only ``--deploy``."""
    num_proxies(value)

    assert ("drf_totp.W005" in {message.id for message in run_checks()}) is warned


@pytest.mark.usefixtures("counting_cache")
def test_a_throttled_code_is_not_evaluated_or_counted(user, make_device, rates):
    device = device_for("validate", user, make_device)
    rates(totp_user="1/min", totp_ip=None)
    client = client_of(user)
    assert_error(post_token(client, VALIDATE, wrong_code(device)), 400, "invalid_token")

    assert_throttled(post_token(client, VALIDATE, current_code(device)))

    device.refresh_from_db()
    assert (device.failure_count, device.use_count) == (1, 0)


@pytest.mark.usefixtures("counting_cache")
@pytest.mark.parametrize("url", CODE_ENDPOINTS.values(), ids=CODE_ENDPOINTS.keys())
def test_every_endpoint_that_takes_a_code_is_throttled(user, make_device, rates, url):
    device_for("verify" if url == CODE_ENDPOINTS["verify"] else "validate", user, make_device)
    rates(totp_user="1/min", totp_ip=None)
    client = client_of(user)
    assert_passed(attempt(client, url))

    assert_throttled(attempt(client, url))


# --- system checks ---------------------------------------------------------------------------


def drf_totp_messages() -> set[str]:
    return {message.id for message in run_checks() if message.id.startswith("drf_totp.")}


def test_defaults_pass_the_checks_without_warnings():
    assert drf_totp_messages() == set()


@pytest.mark.parametrize(
    "setting,value,expected",
    [
        ("TOTP_FREE_FAILURES", 10, set()),
        ("TOTP_FREE_FAILURES", 11, {"drf_totp.W001"}),
        ("TOTP_MAX_FAILURES", 100, set()),
        ("TOTP_MAX_FAILURES", 101, {"drf_totp.W002"}),
        ("TOTP_LOCKOUT_SECONDS", 29, {"drf_totp.W003"}),
        ("TOTP_LOCKOUT_MAX_SECONDS", 599, {"drf_totp.W003"}),
        ("TOTP_LOCKOUT_MAX_SECONDS", 600, set()),
    ],
)
def test_settings_that_weaken_the_lock_are_warned_about(settings, setting, value, expected):
    setattr(settings, setting, value)

    assert drf_totp_messages() == expected


@pytest.mark.parametrize("scope", ["totp_user", "totp_ip"])
def test_a_disabled_code_throttle_is_warned_about(rates, scope):
    rates(**{scope: None})

    assert drf_totp_messages() == {"drf_totp.W004"}


def test_other_rates_in_settings_keep_the_code_throttles_on_without_warning(
    rates, user, make_device
):
    rates(anon="100/day")

    assert drf_totp_messages() == set()
