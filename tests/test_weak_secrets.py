"""Issue 12, item 5: legacy secrets never crash.

A secret under pyotp's 112 bits (django-otp's 80-bit keys, the classic ``JBSWY3DPEHPK3PXP``)
works on every code endpoint, with the codes the peers compute, and is flagged weak in status
and the admin; its user may enroll a new authenticator without turning 2FA off first. A secret
that is no TOTP key at all (not base32, or empty) answers 503 ``secret_invalid`` and is logged,
never a 500.
"""

from __future__ import annotations

import base64
import logging
import time
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP as DjangoOTPTOTP
from django_otp.plugins.otp_totp.models import TOTPDevice as DjangoOTPDevice

from drf_totp import importers, recovery
from drf_totp.devices import REPLACEMENT_NAME, new_secret
from drf_totp.models import RecoveryCode, TOTPDevice
from tests.code_checks import (
    DISABLE,
    GENERATE,
    LOGIN,
    RECOVERY_CODES,
    STATUS,
    VALIDATE,
    VERIFY,
    assert_error,
    current_code,
    post,
    post_token,
    redeem,
    start_login,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock", "unthrottled")]

CLASSIC = "JBSWY3DPEHPK3PXP"  # 80 bits: b"Hello!\xde\xad\xbe\xef", in countless tutorials
# django-otp's key of 10 bytes (its default is 20; 80 bits was common), and one just under 112.
SHORT_SECRETS = {
    "classic 80 bits": CLASSIC,
    "django-otp 80 bits": base64.b32encode(bytes.fromhex("3132333435363738393a")).decode(),
    "104 bits": base64.b32encode(bytes(range(1, 14))).decode().rstrip("="),
}
NOT_KEYS = {"not base32": "0189-NOT-A-KEY", "empty": ""}


def peer_code(secret: str, *, digits: int = 6, shift: int = 0) -> str:
    """The code django-otp computes for the key now (``shift`` steps later): not our code path,
    and not pyotp, which refuses keys this short."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    totp = DjangoOTPTOTP(key, step=30, t0=0, digits=digits, drift=0)
    totp.time = time.time() + 30 * shift
    return f"{totp.token():0{digits}d}"


@pytest.fixture(params=list(SHORT_SECRETS))
def short_secret(request) -> str:
    return SHORT_SECRETS[request.param]


@pytest.fixture
def weak_device(user, make_device, short_secret) -> TOTPDevice:
    return make_device(user, secret=short_secret)


def errors_logged(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "drf_totp" and r.levelno >= logging.ERROR
    ]


# --- short secrets work -------------------------------------------------------------------------


@pytest.mark.parametrize("digits", [6, 8])
def test_short_secrets_give_the_codes_django_otp_gives(user, make_device, short_secret, digits):
    device = make_device(user, secret=short_secret, digits=digits)
    totp = device.totp()

    for shift in (-1, 0, 1, 1000):
        at = time.time() + 30 * shift
        assert totp.at(at) == peer_code(short_secret, digits=digits, shift=shift)


@pytest.mark.parametrize("url", [VALIDATE, DISABLE, RECOVERY_CODES])
def test_a_short_secret_works_on_the_code_endpoints(auth_client, weak_device, url, caplog):
    response = post_token(auth_client, url, peer_code(weak_device.secret))

    assert response.status_code == 200, response.content
    assert errors_logged(caplog) == []


def test_a_short_secret_works_in_the_two_step_login(api_client, user, password, weak_device):
    ticket = start_login(api_client, user, password)

    response = redeem(api_client, ticket, peer_code(weak_device.secret))

    assert response.status_code == 200, response.content


def test_a_pending_device_with_a_short_secret_can_be_confirmed(auth_client, user, make_device):
    make_device(user, confirmed=False, secret=CLASSIC)

    response = post_token(auth_client, VERIFY, peer_code(CLASSIC))

    assert response.status_code == 200, response.content
    assert TOTPDevice.objects.get(user=user).is_confirmed


def test_a_wrong_code_for_a_short_secret_is_an_ordinary_wrong_code(auth_client, weak_device):
    right = peer_code(weak_device.secret)
    wrong = f"{(int(right) + 1) % 10**6:06d}"

    assert_error(post_token(auth_client, VALIDATE, wrong), 400, "invalid_token", "token")
    assert TOTPDevice.objects.get(pk=weak_device.pk).failure_count == 1


# --- flagged weak -------------------------------------------------------------------------------


def test_the_weak_flag_is_set_when_the_secret_is_written(user, other_user, make_device):
    weak = make_device(user, secret=CLASSIC)
    strong = make_device(other_user)

    assert (weak.weak_secret, strong.weak_secret) == (True, False)
    strong.secret = CLASSIC
    strong.save(update_fields=["secret"])
    assert TOTPDevice.objects.get(pk=strong.pk).weak_secret is True


def test_status_says_a_confirmed_device_has_a_weak_secret(auth_client, weak_device):
    body = auth_client.get(STATUS).json()

    assert (body["enabled"], body["weak_secret"]) == (True, True)


@pytest.mark.parametrize("confirmed", [None, False, True], ids=["none", "pending", "confirmed"])
def test_status_says_no_weak_secret_otherwise(auth_client, user, make_device, confirmed):
    if confirmed is not None:
        make_device(user, confirmed=confirmed)

    assert auth_client.get(STATUS).json()["weak_secret"] is False


def test_totp_status_says_when_the_secret_is_weak(user, make_device):
    make_device(user, secret=CLASSIC)
    out = StringIO()

    call_command("totp_status", "alice", stdout=out)

    assert out.getvalue().splitlines()[-1] == (
        "Secret: weak (under 112 bits, or no key): the user should enroll again"
    )
    assert CLASSIC not in out.getvalue()


def test_admin_lists_and_filters_devices_by_weak_secret(
    admin_client, user, other_user, make_device
):
    make_device(user, secret=CLASSIC)
    make_device(other_user)
    changelist = reverse("admin:drf_totp_totpdevice_changelist")

    def owners(value: str) -> list[str]:
        page = admin_client.get(changelist, {"weak_secret__exact": value})
        return [device.user.username for device in page.context["cl"].result_list]

    assert owners("1") == ["alice"]
    assert owners("0") == ["bob"]
    html = admin_client.get(changelist).content.decode()
    assert "weak secret" in html.lower()
    assert CLASSIC not in html


# --- re-enrollment ------------------------------------------------------------------------------


def test_a_weak_device_is_replaced_by_a_new_one_without_turning_2fa_off(
    session_client, user, weak_device, authenticator, clock
):
    old = weak_device.secret
    old_codes = recovery.issue(user, timezone.now())
    # The session passes the second factor with the weak device...
    assert post_token(session_client, VALIDATE, peer_code(old)).status_code == 200

    # ...and enrolls a new authenticator; the weak device still works meanwhile.
    generated = post(session_client, GENERATE)
    assert generated.status_code == 200, generated.content
    pending = TOTPDevice.objects.get(user=user, is_confirmed=False)
    assert pending.name == REPLACEMENT_NAME and not pending.weak_secret
    assert session_client.get(STATUS).json()["enabled"] is True
    clock.shift(30)
    confirmed = post_token(session_client, VERIFY, authenticator(generated.json()["otpauth_url"]))

    assert confirmed.status_code == 200, confirmed.content
    [device] = TOTPDevice.objects.filter(user=user)
    assert (device.pk, device.is_confirmed, device.name) == (pending.pk, True, "default")
    assert (device.secret, device.weak_secret) == (generated.json()["secret"], False)
    assert session_client.get(STATUS).json()["weak_secret"] is False
    # A new set of recovery codes; the old set and the old secret are gone.
    assert len(confirmed.json()["recovery_codes"]) == RecoveryCode.objects.filter(user=user).count()
    clock.shift(30)
    assert_error(post_token(session_client, VALIDATE, peer_code(old)), 400, "invalid_token")
    assert_error(post_token(session_client, VALIDATE, old_codes[0]), 400, "invalid_token")


def test_replacing_a_weak_device_needs_a_credential_that_passed_the_second_factor(
    session_client, user, weak_device
):
    response = post(session_client, GENERATE)

    assert_error(response, 403, "otp_required")
    assert list(TOTPDevice.objects.filter(user=user)) == [weak_device]


def test_a_strong_device_is_not_replaced_even_with_the_second_factor_passed(
    session_client, user, make_device
):
    device = make_device(user)
    assert post_token(session_client, VALIDATE, current_code(device)).status_code == 200

    assert_error(post(session_client, GENERATE), 409, "already_enabled")
    assert TOTPDevice.objects.filter(user=user).count() == 1


def test_confirming_a_replacement_keeps_a_strong_device_confirmed_meanwhile(
    auth_client, user, make_device, authenticator
):
    """Should a strong device have been confirmed between generate/ and verify/, it stays and
    the replacement is refused (the one confirmed device is never lost)."""
    strong = make_device(user)
    pending = make_device(user, confirmed=False, name=REPLACEMENT_NAME)

    response = post_token(auth_client, VERIFY, authenticator(pending))

    assert_error(response, 409, "already_enabled")
    assert TOTPDevice.objects.get(pk=strong.pk).is_confirmed
    assert not TOTPDevice.objects.get(pk=pending.pk).is_confirmed


@pytest.mark.django_db(transaction=True)
def test_one_of_eight_simultaneous_confirmations_of_a_replacement_wins(
    user, make_device, authenticator, in_threads
):
    make_device(user, secret=CLASSIC)
    pending = make_device(user, confirmed=False, name=REPLACEMENT_NAME)
    code = authenticator(pending)

    def send(client, i):
        client.force_authenticate(user=user)
        response = post_token(client, VERIFY, code)
        return response.status_code, response.json().get("code")

    results = in_threads(8, send)

    assert results.count((200, None)) == 1, results
    # Losers: the step was used, the replacement was confirmed, or (guesses still in flight)
    # the row was locked for a moment by the reservations of the burst.
    losers = {(400, "token_reused"), (409, "already_enabled"), (429, "locked")}
    assert set(results) - {(200, None)} <= losers, results
    [device] = TOTPDevice.objects.filter(user=user)
    assert (device.pk, device.is_confirmed, device.name) == (pending.pk, True, "default")


# --- secrets that are no key at all -------------------------------------------------------------


@pytest.fixture(params=list(NOT_KEYS))
def broken_device(request, user, make_device) -> TOTPDevice:
    return make_device(user, secret=NOT_KEYS[request.param])


@pytest.mark.parametrize("url", [VALIDATE, DISABLE, RECOVERY_CODES])
def test_a_secret_that_is_no_key_answers_503_and_is_logged(auth_client, broken_device, url, caplog):
    response = post_token(auth_client, url, "123456")

    assert_error(response, 503, "secret_invalid")
    [line] = errors_logged(caplog)
    assert f"TOTP device {broken_device.pk} (user {broken_device.user_id})" in line
    assert "not base32" in line
    assert TOTPDevice.objects.get(pk=broken_device.pk).failure_count == 0


def test_a_secret_that_is_no_key_fails_only_at_the_code_step_of_a_login(
    api_client, user, password, broken_device
):
    ticket = start_login(api_client, user, password)

    assert_error(redeem(api_client, ticket, "123456"), 503, "secret_invalid")


def test_a_user_whose_secret_is_no_key_logs_in_with_a_recovery_code_and_enrolls_again(
    api_client, session_client, user, password, broken_device, authenticator
):
    codes = recovery.issue(user, timezone.now())
    assert session_client.get(STATUS).json()["weak_secret"] is True
    ticket = start_login(api_client, user, password)
    assert redeem(api_client, ticket, codes[0]).status_code == 200

    # Passing the second factor with a recovery code opens the re-enrollment.
    assert post_token(session_client, VALIDATE, codes[1]).status_code == 200
    url = post(session_client, GENERATE).json()["otpauth_url"]
    assert post_token(session_client, VERIFY, authenticator(url)).status_code == 200

    [device] = TOTPDevice.objects.filter(user=user)
    assert (device.is_confirmed, device.weak_secret) == (True, False)


# --- import -------------------------------------------------------------------------------------


def test_the_import_report_says_which_users_got_a_weak_secret(user, other_user, auth_client):
    short = DjangoOTPDevice.objects.create(
        user=user, name="old phone", key="3132333435363738393a", confirmed=True
    )
    DjangoOTPDevice.objects.create(user=other_user, name="phone", key="31" * 20, confirmed=True)

    report = importers.import_django_otp()

    notes = {item.user: item.notes for item in report.imported}
    assert any("weak secret" in note for note in notes["alice"])
    assert not any("weak secret" in note for note in notes["bob"])
    assert TOTPDevice.objects.get(user=user).weak_secret is True
    code = peer_code(base64.b32encode(bytes.fromhex(short.key)).decode())
    assert post_token(auth_client, VALIDATE, code).status_code == 200


def test_login_with_a_weak_secret_issues_a_ticket(api_client, user, password, weak_device):
    response = post(api_client, LOGIN, {"username": "alice", "password": password})

    assert response.status_code == 200 and response.json()["mfa_required"] is True


# --- the migration that adds the flag -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_flags_the_weak_secrets_already_stored(django_user_model):
    """Rows written before the flag existed get it; a secret it cannot decrypt keeps False
    (totp_rotate_keys sets it once the keys are right) and does not stop the migration."""
    before = [("drf_totp", "0001_v1_initial")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("drf_totp")
    executor.migrate(before)
    try:
        device_model = executor.loader.project_state(before).apps.get_model(
            "drf_totp", "TOTPDevice"
        )
        secrets = {"weak": CLASSIC, "strong": new_secret(), "no key": "0189", "lost": CLASSIC}
        pks = {}
        for name, secret in secrets.items():
            owner = django_user_model.objects.create_user(username=name.replace(" ", "_"))
            keys = [Fernet.generate_key().decode()] if name == "lost" else []
            with override_settings(TOTP_ENCRYPTION_KEYS=keys):
                pks[name] = device_model.objects.create(
                    user_id=owner.pk, secret=secret, created_at=timezone.now()
                ).pk
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)

    flags = dict(TOTPDevice.objects.values_list("pk", "weak_secret"))
    assert {name: flags[pk] for name, pk in pks.items()} == {
        "weak": True,
        "strong": False,
        "no key": True,
        "lost": False,
    }
