"""Importing from django-allauth's MFA (issues #6 and #13): TOTP authenticators and the unused
recovery codes, made with allauth's own code (``TOTP.activate``, ``RecoveryCodes.activate``)."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal import auth as allauth_totp

from drf_totp import importers, recovery
from drf_totp.models import RecoveryCode, TOTPDevice
from tests.code_checks import (
    DISABLE,
    LOGIN,
    LOGIN_VERIFY,
    STATUS,
    VALIDATE,
    assert_error,
    post,
    post_token,
)
from tests.importers.sources import (
    SECRET,
    FernetMFAAdapter,
    allauth_code,
    now_step,
    only,
    reasons,
)

pytestmark = pytest.mark.django_db


def remaining(client) -> int:
    return client.get(STATUS).json()["recovery_codes_remaining"]


def allauth_codes(user, *, used: int = 0) -> tuple[RecoveryCodes, list[str]]:
    """allauth's recovery codes for ``user`` as allauth shows them; the first ``used`` of them
    used through allauth's own check."""
    codes = RecoveryCodes.activate(user)
    shown = codes.generate_codes()
    for code in shown[:used]:
        assert codes.validate_code(code)
    return codes, shown


def failures(user) -> int:
    return TOTPDevice.objects.get(user=user).failure_count


# --- the TOTP authenticator ----------------------------------------------------------------------


def test_allauth_totp_is_imported_with_the_secret_decrypted_by_its_adapter(
    user, encrypting_adapter
):
    authenticator = allauth_totp.TOTP.activate(user, SECRET).instance
    assert SECRET not in str(Authenticator.objects.get(pk=authenticator.pk).data)

    report = importers.import_allauth()

    imported = only(report, "imported")
    assert imported.origin == f"allauth TOTP authenticator #{authenticator.pk}"
    assert imported.notes[0].startswith("allauth keeps used codes only in its cache")
    device = TOTPDevice.objects.get(user=user)
    assert (device.secret, device.is_confirmed, device.digits, device.period) == (
        SECRET,
        True,
        6,
        30,
    )
    # allauth keeps no step: the current one, so nothing accepted before the import replays.
    assert device.last_used_step == now_step()


def test_allauth_code_used_just_before_the_import_is_refused_and_the_next_one_works(
    user, auth_client, clock
):
    allauth_totp.TOTP.activate(user, SECRET)
    code = allauth_code(SECRET, now_step())
    assert allauth_totp.TOTP(Authenticator.objects.get(user=user)).validate_code(code)
    importers.import_allauth()

    assert_error(post_token(auth_client, VALIDATE, code), 400, "token_reused", "token")

    clock.shift(30)
    response = post_token(auth_client, VALIDATE, allauth_code(SECRET, now_step()))
    assert response.status_code == 200, response.content


def test_allauth_tolerance_moves_the_last_step_past_every_code_it_accepted(user, settings):
    settings.MFA_TOTP_TOLERANCE = 1
    allauth_totp.TOTP.activate(user, SECRET)

    imported = only(importers.import_allauth(), "imported")

    assert TOTPDevice.objects.get(user=user).last_used_step == now_step() + 1
    assert "plus its tolerance (1)" in imported.notes[0]


def test_allauth_skips_are_reported(user, other_user, make_device):
    Authenticator.objects.create(user=user, type=Authenticator.Type.WEBAUTHN, data={})
    codes = RecoveryCodes.activate(user)  # no TOTP to go with them
    make_device(other_user)
    theirs = allauth_totp.TOTP.activate(other_user, SECRET).instance

    report = importers.import_allauth()

    assert report.imported == []
    assert reasons(report) == {
        f"allauth webauthn authenticator #{Authenticator.objects.get(type='webauthn').pk}": (
            "drf_totp imports TOTP only"
        ),
        f"allauth recovery codes #{codes.instance.pk}": (
            "the user has no allauth TOTP authenticator to go with them"
        ),
        f"allauth TOTP authenticator #{theirs.pk}": "the user already has a drf_totp device",
    }


def test_allauth_secret_that_its_adapter_cannot_decrypt_is_skipped(user, encrypting_adapter):
    authenticator = Authenticator.objects.create(
        user=user, type=Authenticator.Type.TOTP, data={"secret": "gAAAAAnot-a-fernet-token"}
    )

    report = importers.import_allauth()

    assert reasons(report) == {
        f"allauth TOTP authenticator #{authenticator.pk}": (
            "the secret could not be decrypted by the MFA adapter (InvalidToken)"
        )
    }
    assert not TOTPDevice.objects.exists()


def test_allauth_secret_that_is_not_base32_is_skipped(user):
    authenticator = Authenticator.objects.create(
        user=user, type=Authenticator.Type.TOTP, data={"secret": "not base32!"}
    )

    report = importers.import_allauth()

    assert reasons(report) == {
        f"allauth TOTP authenticator #{authenticator.pk}": "the secret is not valid base32"
    }


def test_allauth_short_secret_is_imported_and_reported_as_weak(user):
    allauth_totp.TOTP.activate(user, "GEZDGNBVGY3TQOJQ")  # 80 bits

    imported = only(importers.import_allauth(), "imported")

    assert imported.notes[0] == "weak secret: 80 bits"
    assert TOTPDevice.objects.get(user=user).secret == "GEZDGNBVGY3TQOJQ"


def test_allauth_period_out_of_range_is_skipped(user, settings):
    settings.MFA_TOTP_PERIOD = 300
    allauth_totp.TOTP.activate(user, SECRET)

    report = importers.import_allauth()

    assert only(report, "skipped").reason == "a period of 300s is not supported (only 15 to 120s)"


# --- recovery codes ----------------------------------------------------------------------------


def test_allauth_unused_recovery_codes_are_imported_as_keyed_digests(user, encrypting_adapter):
    allauth_totp.TOTP.activate(user, SECRET)
    codes, shown = allauth_codes(user, used=1)

    report = importers.import_allauth()

    assert "9 unused recovery code(s) imported" in only(report, "imported").notes
    assert reasons(report) == {}
    rows = RecoveryCode.objects.filter(user=user)
    assert set(rows.values_list("format", flat=True)) == {"allauth"}
    assert set(rows.values_list("digest", flat=True)) == {
        recovery.digests(code, "allauth")[0] for code in codes.get_unused_codes()
    }
    assert set(codes.get_unused_codes()) == set(shown[1:])


def test_each_unused_allauth_code_works_once_and_the_used_one_not(user, auth_client, clock):
    allauth_totp.TOTP.activate(user, SECRET)
    _, shown = allauth_codes(user, used=1)
    importers.import_allauth()
    assert remaining(auth_client) == 9

    assert post_token(auth_client, VALIDATE, shown[1]).status_code == 200
    assert remaining(auth_client) == 8
    assert_error(post_token(auth_client, VALIDATE, shown[1]), 400, "token_reused", "token")
    # Used in allauth before the import: not brought over, so a wrong code.
    assert_error(post_token(auth_client, VALIDATE, shown[0]), 400, "invalid_token", "token")
    assert remaining(auth_client) == 8


@pytest.mark.parametrize("retype", ["{}-{}", "{} {}", " {}{} "], ids=["dash", "space", "padded"])
def test_allauth_codes_are_read_as_allauth_reads_them(user, auth_client, retype):
    allauth_totp.TOTP.activate(user, SECRET)
    _, shown = allauth_codes(user)
    importers.import_allauth()

    response = post_token(auth_client, VALIDATE, retype.format(shown[3][:4], shown[3][4:]))

    assert response.status_code == 200, response.content


def test_an_allauth_code_works_at_login_and_at_disable(
    api_client, auth_client, user, password, clock
):
    allauth_totp.TOTP.activate(user, SECRET)
    _, shown = allauth_codes(user)
    importers.import_allauth()
    ticket = post(api_client, LOGIN, {"username": "alice", "password": password}).json()["ticket"]

    assert post(api_client, LOGIN_VERIFY, {"ticket": ticket, "token": shown[0]}).status_code == 200
    assert post(auth_client, DISABLE, {"token": shown[1]}).status_code == 200
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()


def test_allauth_migrated_codes_come_along(user, auth_client, encrypting_adapter):
    allauth_totp.TOTP.activate(user, SECRET)
    shown = [recovery.generate()[1] for _ in range(2)] + ["legacy-token-1"]
    adapter = FernetMFAAdapter()
    Authenticator.objects.create(
        user=user,
        type=Authenticator.Type.RECOVERY_CODES,
        data={"migrated_codes": [adapter.encrypt(code) for code in shown]},
    )

    report = importers.import_allauth()

    assert "3 unused recovery code(s) imported" in only(report, "imported").notes
    for code in shown:
        response = post_token(auth_client, VALIDATE, code)
        assert response.status_code == 200, (code, response.content)
    assert remaining(auth_client) == 0


def test_allauth_codes_that_cannot_be_recovered_are_reported_and_the_totp_imported(
    user, encrypting_adapter
):
    allauth_totp.TOTP.activate(user, SECRET)
    codes = Authenticator.objects.create(
        user=user,
        type=Authenticator.Type.RECOVERY_CODES,
        data={"seed": "gAAAAAnot-a-fernet-token", "used_mask": 0},
    )

    report = importers.import_allauth()

    assert only(report, "imported").user == "alice"
    assert reasons(report) == {
        f"allauth recovery codes #{codes.pk}": "the codes could not be recovered (InvalidToken)"
    }
    assert not RecoveryCode.objects.exists()


def test_six_digit_allauth_codes_are_not_imported_and_the_report_says_why(user, settings):
    settings.MFA_RECOVERY_CODE_DIGITS = 6
    allauth_totp.TOTP.activate(user, SECRET)
    codes, _ = allauth_codes(user)

    report = importers.import_allauth()

    assert reasons(report)[f"allauth recovery codes #{codes.instance.pk}"].startswith(
        "10 unused recovery code(s) not imported"
    )
    assert not RecoveryCode.objects.exists()


# --- on an 8-digit device, an 8-digit allauth code is a recovery code ----------------------------


@pytest.fixture
def eight_digits(user, settings):
    """alice's allauth TOTP of 8 digits and her allauth recovery codes (8 digits too), imported."""
    settings.MFA_TOTP_DIGITS = 8
    allauth_totp.TOTP.activate(user, SECRET)
    _, shown = allauth_codes(user)
    importers.import_allauth()
    assert TOTPDevice.objects.get(user=user).digits == 8
    return shown


def test_an_allauth_code_on_an_8_digit_device_is_a_recovery_code(auth_client, user, eight_digits):
    response = post_token(auth_client, VALIDATE, eight_digits[0])

    assert response.status_code == 200, response.content
    assert remaining(auth_client) == 9
    assert failures(user) == 0


def test_a_used_allauth_code_on_an_8_digit_device_is_reused_not_a_wrong_guess(
    auth_client, user, eight_digits
):
    assert post_token(auth_client, VALIDATE, eight_digits[0]).status_code == 200

    again = post_token(auth_client, VALIDATE, eight_digits[0])

    assert_error(again, 400, "token_reused", "token")
    assert failures(user) == 0


def test_totp_codes_on_an_8_digit_device_still_work_and_wrong_ones_count(
    auth_client, user, eight_digits, clock
):
    clock.shift(30)  # the import used up the current step
    code = allauth_code(SECRET, now_step())
    assert len(code) == 8

    assert post_token(auth_client, VALIDATE, code).status_code == 200
    wrong = next(c for c in (f"{n:08d}" for n in range(100)) if c not in eight_digits)
    assert_error(post_token(auth_client, VALIDATE, wrong), 400, "invalid_token", "token")
    assert failures(user) == 1
    assert remaining(auth_client) == 10


def test_an_allauth_code_lifts_the_lock_after_100_failures_on_an_8_digit_device(
    auth_client, user, eight_digits
):
    TOTPDevice.objects.filter(user=user).update(failure_count=100)

    response = post_token(auth_client, VALIDATE, eight_digits[4])

    assert response.status_code == 200, response.content
    assert failures(user) == 0


def test_a_new_set_replaces_the_imported_codes(auth_client, user, eight_digits, clock):
    clock.shift(30)
    new = post_token(
        auth_client, "/auth/otp/recovery-codes/", allauth_code(SECRET, now_step())
    ).json()["recovery_codes"]

    assert remaining(auth_client) == 10
    assert set(RecoveryCode.objects.values_list("format", flat=True)) == {"drf-totp"}
    assert_error(post_token(auth_client, VALIDATE, eight_digits[0]), 400, "invalid_token")
    assert post_token(auth_client, VALIDATE, new[0]).status_code == 200
