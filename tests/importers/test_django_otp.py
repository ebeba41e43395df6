"""Importing from django-otp (issues #6 and #13): ``otp_totp`` devices, made with django-otp's own
models, and the tokens of ``otp_static`` devices as recovery codes, each usable once."""

from __future__ import annotations

import base64

import pytest
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from drf_totp import importers, recovery
from drf_totp.models import RecoveryCode, TOTPDevice
from tests.code_checks import STATUS, VALIDATE, assert_error, post_token
from tests.importers.sources import (
    KEY_HEX,
    django_otp_code,
    now_step,
    only,
    otp_device,
    reasons,
)

pytestmark = pytest.mark.django_db


def static_tokens(user, *tokens: str, confirmed: bool = True) -> StaticDevice:
    """A django-otp static device with ``tokens`` (random ones, as django-otp makes them, if
    none are given)."""
    device = StaticDevice.objects.create(user=user, name="backup", confirmed=confirmed)
    for token in tokens or [StaticToken.random_token() for _ in range(5)]:
        StaticToken.objects.create(device=device, token=token)
    return device


def tokens_of(device: StaticDevice) -> list[str]:
    return list(device.token_set.order_by("pk").values_list("token", flat=True))


def remaining(client) -> int:
    return client.get(STATUS).json()["recovery_codes_remaining"]


# --- the TOTP device --------------------------------------------------------------------------


def test_django_otp_device_is_imported_with_its_confirmed_state_and_last_step(user):
    last_t = now_step() - 3
    source = otp_device(user, last_t=last_t, digits=8)

    report = importers.import_django_otp()

    imported = only(report, "imported")
    assert (imported.user, imported.origin) == (
        "alice",
        f'django-otp TOTPDevice #{source.pk} "phone"',
    )
    device = TOTPDevice.objects.get(user=user)
    assert device.secret == base64.b32encode(bytes.fromhex(KEY_HEX)).decode()
    assert (device.is_confirmed, device.last_used_step) == (True, last_t)
    assert (device.digits, device.period, device.algorithm) == (8, 30, "SHA1")
    assert device.name == "default"
    assert device.created_at == source.created_at
    assert report.skipped == []


def test_code_of_the_django_otp_key_validates_through_the_api(user, auth_client):
    source = otp_device(user, last_t=now_step() - 3)
    importers.import_django_otp()

    response = post_token(auth_client, VALIDATE, django_otp_code(source))

    assert response.status_code == 200, response.content


def test_code_of_the_step_django_otp_last_accepted_is_refused(user, auth_client):
    source = otp_device(user)
    code = django_otp_code(source)
    assert source.verify_token(code)  # django-otp accepts it, and records its step in last_t
    source.refresh_from_db()
    importers.import_django_otp()

    response = post_token(auth_client, VALIDATE, code)

    assert_error(response, 400, "token_reused", "token")
    assert TOTPDevice.objects.get(user=user).last_used_step == source.last_t


def test_never_used_django_otp_device_gets_step_zero(user):
    otp_device(user)  # last_t -1: no code was ever accepted

    importers.import_django_otp()

    assert TOTPDevice.objects.get(user=user).last_used_step == 0


def test_django_otp_devices_that_cannot_be_imported_are_reported(
    user, other_user, make_device, django_user_model
):
    carol = django_user_model.objects.create_user(username="carol", password="x")
    dave = django_user_model.objects.create_user(username="dave", password="x")
    erin = django_user_model.objects.create_user(username="erin", password="x")
    pending = otp_device(user, confirmed=False, name="new phone")
    offset = otp_device(user, t0=1_000_000)
    make_device(other_user)
    has_ours = otp_device(other_user)
    short_step = otp_device(carol, step=10)
    seven = otp_device(dave, digits=7)
    bad_key = otp_device(erin, key="not hex")

    report = importers.import_django_otp()

    assert report.imported == []
    origin = 'django-otp TOTPDevice #{} "{}"'.format
    assert reasons(report) == {
        origin(pending.pk, "new phone"): "not confirmed (enrollment never finished)",
        origin(offset.pk, "phone"): (
            "t0 is 1000000: its steps count from t0, drf_totp's from the Unix epoch, and "
            "drf_totp keeps no offset"
        ),
        origin(has_ours.pk, "phone"): "the user already has a drf_totp device",
        origin(short_step.pk, "phone"): "a period of 10s is not supported (only 15 to 120s)",
        origin(seven.pk, "phone"): "7-digit codes are not supported (only 6 or 8)",
        origin(bad_key.pk, "phone"): "the key is not valid hex",
    }
    assert not TOTPDevice.objects.filter(user__in=[user, carol, dave, erin]).exists()


def test_a_pending_drf_totp_enrollment_is_not_replaced(user, make_device):
    pending = make_device(user, confirmed=False)
    source = otp_device(user)

    report = importers.import_django_otp()

    assert reasons(report) == {
        f'django-otp TOTPDevice #{source.pk} "phone"': (
            "the user has a pending drf_totp enrollment; the old device is not put over it"
        )
    }
    assert list(TOTPDevice.objects.filter(user=user)) == [pending]


def test_one_device_per_user_the_last_used_one(user):
    older = otp_device(user, name="old phone", last_t=now_step() - 100)
    newer = otp_device(user, name="new phone", last_t=now_step() - 2)

    report = importers.import_django_otp()

    assert only(report, "imported").origin == f'django-otp TOTPDevice #{newer.pk} "new phone"'
    assert reasons(report) == {
        f'django-otp TOTPDevice #{older.pk} "old phone"': (
            f'django-otp TOTPDevice #{newer.pk} "new phone" was imported for this user'
        )
    }
    assert TOTPDevice.objects.get(user=user).last_used_step == newer.last_t


def test_drift_and_tolerance_are_not_kept_and_the_report_says_so(user, settings):
    settings.TOTP_VALID_WINDOW = 1
    otp_device(user, drift=1, tolerance=3)

    imported = only(importers.import_django_otp(), "imported")

    assert imported.notes == (
        "drift of 1 step(s) not kept",
        "tolerance 3 not kept (TOTP_VALID_WINDOW 1 applies)",
    )


def test_a_short_key_is_imported_and_reported_as_weak(user):
    otp_device(user, key="31323334353637383930")  # 80 bits, django-otp's own test key length

    imported = only(importers.import_django_otp(), "imported")

    assert imported.notes[0] == "weak secret: 80 bits"
    secret = TOTPDevice.objects.get(user=user).secret
    assert base64.b32decode(secret) == bytes.fromhex("31323334353637383930")


def test_a_code_of_a_short_key_validates_after_the_import_and_is_flagged_weak(user, auth_client):
    source = otp_device(user, key="31323334353637383930", last_t=now_step() - 3)
    importers.import_django_otp()

    response = post_token(auth_client, VALIDATE, django_otp_code(source))

    assert response.status_code == 200, response.content
    assert auth_client.get("/auth/otp/status/").json()["weak_secret"] is True


# --- static tokens become recovery codes -------------------------------------------------------


def test_static_tokens_are_imported_as_keyed_digests_of_their_format(user):
    otp_device(user)
    static = static_tokens(user)

    imported = only(importers.import_django_otp(), "imported")

    assert imported.notes == ("5 unused recovery code(s) imported",)
    rows = RecoveryCode.objects.filter(user=user)
    assert set(rows.values_list("format", flat=True)) == {"django-otp"}
    stored = set(rows.values_list("digest", flat=True))
    assert stored == {recovery.digests(t, "django-otp")[0] for t in tokens_of(static)}


def test_a_static_token_works_once_as_a_recovery_code(user, auth_client):
    otp_device(user)
    token = tokens_of(static_tokens(user))[2]
    importers.import_django_otp()
    assert remaining(auth_client) == 5

    response = post_token(auth_client, VALIDATE, token)

    assert response.status_code == 200, response.content
    assert remaining(auth_client) == 4
    assert_error(post_token(auth_client, VALIDATE, token), 400, "token_reused", "token")
    assert TOTPDevice.objects.get(user=user).failure_count == 0


def test_a_static_token_is_accepted_in_upper_case_too(user, auth_client):
    otp_device(user)
    token = tokens_of(static_tokens(user))[0]  # django-otp makes them in lower case
    importers.import_django_otp()

    assert post_token(auth_client, VALIDATE, token.upper()).status_code == 200


def test_tokens_of_an_unconfirmed_static_device_are_not_imported(user):
    otp_device(user)
    static_tokens(user, confirmed=False)

    assert only(importers.import_django_otp(), "imported").notes == ()
    assert not RecoveryCode.objects.exists()


def test_a_six_digit_static_token_is_not_imported_and_the_report_says_why(user):
    otp_device(user)
    static = static_tokens(user, "123456", "backup-2024", "x" * 16)

    report = importers.import_django_otp()

    assert only(report, "imported").notes == ("2 unused recovery code(s) imported",)
    assert reasons(report)[f"django-otp StaticDevice #{static.pk}"].startswith(
        "1 unused recovery code(s) not imported: empty, longer than 32 characters, not ASCII, "
        "or a 6-digit number (which drf_totp takes for an authenticator code)"
    )
    assert RecoveryCode.objects.filter(user=user).count() == 2
