"""Importing from drf-totp 0.x (issues #6 and #13): its tables as its migrations made them, and
0.2's backup codes, checked the way 0.2 checked them.

The backup codes below were made by drf-totp 0.2.0 itself (from PyPI, in a separate virtualenv:
its ``services.setup_totp``, ``confirm_totp``, ``generate_backup_codes``, then
``use_backup_code`` on the first), under this suite's ``SECRET_KEY``; the hashes are what its
``drf_totp_totpbackupcode`` table then held.
"""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from cryptography.fernet import Fernet
from django.utils import timezone

from drf_totp import importers
from drf_totp.models import RecoveryCode, TOTPDevice
from tests.code_checks import STATUS, VALIDATE, assert_error, post_token
from tests.importers.sources import SECRET, fernet_0x, now_step, only, reasons

# (code as 0.2 showed it, its code_hash, used in 0.2)
BACKUP_CODES_0_2 = [
    (
        "UH8KW-GLCQT",
        "hmac_sha256$36e1eda3f2a4ad9b7ed37585b39704fb461afb63d554a732348fe553f1d22af5",
        True,
    ),
    (
        "DL8AH-S8ANB",
        "hmac_sha256$e1b15e8e358c9fa0e39b8757f3c8be89523bc706cc38a8669d8f6b2c1824759a",
        False,
    ),
    (
        "657NE-QQ8BH",
        "hmac_sha256$0f02f44d4e5f3c4a7993ab8abfd819b733f95141ed52379377116d31378976f3",
        False,
    ),
    (
        "Y63HW-2NA4A",
        "hmac_sha256$af9d6298396d4027f1306ec46e2e1e5bdd0592d03dad8fd76890f7269662ba88",
        False,
    ),
]


def remaining(client) -> int:
    return client.get(STATUS).json()["recovery_codes_remaining"]


@pytest.fixture
def with_backup_codes(legacy, user):
    """alice's 0.2 row with the backup codes 0.2 made, the first used."""
    auth = legacy.auth(user, last_used_step=now_step() - 1)
    for _, code_hash, used in BACKUP_CODES_0_2:
        legacy.backup_code(auth, code_hash=code_hash, used=used)
    return auth


# --- the TOTP secret ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_drf_totp_0_tables_nothing_is_imported():
    report = importers.import_drf_totp_0()

    assert report.unavailable == "no drf-totp 0.x tables"
    assert (report.imported, report.skipped) == ([], [])


def test_drf_totp_0_row_is_imported_with_its_last_step(legacy, user, auth_client):
    last_step = now_step() - 4
    used_at = timezone.now() - timedelta(minutes=2)
    legacy.auth(user, last_used_step=last_step, last_used_at=used_at)

    report = importers.import_drf_totp_0()

    assert only(report, "imported").user == "alice"
    device = TOTPDevice.objects.get(user=user)
    assert (device.secret, device.is_confirmed, device.last_used_step) == (SECRET, True, last_step)
    assert device.last_used_at == used_at
    assert device.created_at == timezone.now() - timedelta(days=30)
    # A code computed from the 0.x secret, as 0.x computed it (pyotp), is accepted.
    response = post_token(auth_client, VALIDATE, pyotp.TOTP(SECRET).now())
    assert response.status_code == 200, response.content


def test_drf_totp_0_last_used_code_is_refused(legacy, user, auth_client):
    legacy.auth(user, last_used_step=now_step())
    importers.import_drf_totp_0()

    response = post_token(auth_client, VALIDATE, pyotp.TOTP(SECRET).now())

    assert_error(response, 400, "token_reused", "token")


def test_drf_totp_0_encrypted_secret_is_decrypted_with_its_key(legacy, user, settings):
    key = Fernet.generate_key()
    settings.TOTP_ENCRYPTION_KEY = key.decode()
    legacy.auth(user, secret=fernet_0x(key, SECRET), last_used_step=now_step() - 1)

    importers.import_drf_totp_0()

    assert TOTPDevice.objects.get(user=user).secret == SECRET


def test_drf_totp_0_skips_are_reported(
    legacy, user, other_user, django_user_model, make_device, settings
):
    carol = django_user_model.objects.create_user(username="carol", password="x")
    dave = django_user_model.objects.create_user(username="dave", password="x")
    erin = django_user_model.objects.create_user(username="erin", password="x")
    frank = django_user_model.objects.create_user(username="frank", password="x")
    settings.TOTP_DIGITS = 7  # 0.x allowed 6 to 8 digits
    pending = legacy.auth(user, verified=False)
    make_device(other_user)
    theirs = legacy.auth(other_user)
    locked_away = legacy.auth(carol, secret=fernet_0x(Fernet.generate_key(), SECRET))
    no_secret = legacy.auth(dave, secret=None)
    seven = legacy.auth(erin, last_used_step=now_step())
    garbage = legacy.auth(frank, secret="not base32 at all!")

    report = importers.import_drf_totp_0()

    assert report.imported == []
    auth = "drf-totp 0.x TOTPAuth #{}".format
    assert reasons(report) == {
        auth(pending): "not confirmed (enrollment never finished)",
        auth(theirs): "the user already has a drf_totp device",
        auth(locked_away): "the secret is encrypted and TOTP_ENCRYPTION_KEY (0.x's key) is not set",
        auth(no_secret): "the row has no secret",
        auth(seven): "7-digit codes are not supported (only 6 or 8)",
        auth(garbage): "the secret is not valid base32",
    }


def test_drf_totp_0_secret_under_another_key_is_skipped(legacy, user, settings):
    settings.TOTP_ENCRYPTION_KEY = Fernet.generate_key().decode()
    row = legacy.auth(user, secret=fernet_0x(Fernet.generate_key(), SECRET))

    report = importers.import_drf_totp_0()

    assert reasons(report) == {
        f"drf-totp 0.x TOTPAuth #{row}": "the secret could not be decrypted with TOTP_ENCRYPTION_KEY"
    }


def test_drf_totp_0_short_secret_is_imported_and_reported_as_weak(legacy, user):
    legacy.auth(user, secret="GEZDGNBVGY3TQOJQ", last_used_step=now_step())  # 80 bits

    imported = only(importers.import_drf_totp_0(), "imported")

    assert imported.notes == ("weak secret: 80 bits",)


def test_drf_totp_0_lock_in_force_is_kept(legacy, user):
    until = timezone.now() + timedelta(minutes=3)
    legacy.auth(user, last_used_step=now_step() - 1, locked_until=until, failed_attempts=0)

    imported = only(importers.import_drf_totp_0(), "imported")

    assert TOTPDevice.objects.get(user=user).locked_until == until
    assert imported.notes == (f"locked until {until.isoformat()}, as it was",)


@pytest.mark.parametrize("legacy", ["0.1"], indirect=True)
def test_drf_totp_0_1_row_gets_the_current_step(legacy, user, auth_client):
    legacy.auth(user, otp_auth_url="otpauth://totp/drftotp:alice%40example.com?secret=" + SECRET)

    imported = only(importers.import_drf_totp_0(), "imported")

    device = TOTPDevice.objects.get(user=user)
    assert (device.digits, device.period, device.last_used_step) == (6, 30, now_step())
    assert imported.notes[0].startswith("drf-totp 0.x recorded no last used step")
    assert_error(post_token(auth_client, VALIDATE, pyotp.TOTP(SECRET).now()), 400, "token_reused")


# --- 0.2's backup codes -------------------------------------------------------------------------


def test_unused_backup_codes_are_imported_as_the_digests_0_2_stored(with_backup_codes, user):
    imported = only(importers.import_drf_totp_0(), "imported")

    assert imported.notes == ("3 unused recovery code(s) imported",)
    rows = RecoveryCode.objects.filter(user=user)
    assert set(rows.values_list("format", flat=True)) == {"drf-totp-0.2"}
    assert set(rows.values_list("digest", flat=True)) == {
        code_hash.removeprefix("hmac_sha256$")
        for _, code_hash, used in BACKUP_CODES_0_2
        if not used
    }


@pytest.mark.parametrize(
    "retype",
    [
        pytest.param(lambda c: c, id="as 0.2 showed it"),
        pytest.param(lambda c: c.replace("-", "").lower(), id="lower case, no dash"),
        pytest.param(lambda c: c.replace("-", " "), id="space"),
    ],
)
def test_a_0_2_backup_code_works_once(with_backup_codes, auth_client, user, retype):
    importers.import_drf_totp_0()
    code = BACKUP_CODES_0_2[1][0]

    response = post_token(auth_client, VALIDATE, retype(code))

    assert response.status_code == 200, response.content
    assert remaining(auth_client) == 2
    assert_error(post_token(auth_client, VALIDATE, code), 400, "token_reused", "token")
    assert TOTPDevice.objects.get(user=user).failure_count == 0


def test_a_backup_code_used_in_0_2_is_refused(with_backup_codes, auth_client, user):
    importers.import_drf_totp_0()

    response = post_token(auth_client, VALIDATE, BACKUP_CODES_0_2[0][0])

    assert_error(response, 400, "invalid_token", "token")
    assert remaining(auth_client) == 3


def test_0_2_backup_codes_survive_a_secret_key_rotation_through_the_fallbacks(
    with_backup_codes, auth_client, settings
):
    importers.import_drf_totp_0()
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the project's new secret key, rotated after the upgrade " * 2

    assert post_token(auth_client, VALIDATE, BACKUP_CODES_0_2[2][0]).status_code == 200


def test_0_2_backup_codes_need_the_secret_key_0_2_hashed_them_with(
    with_backup_codes, auth_client, settings
):
    # 0.2 keyed its hashes with SECRET_KEY: under another key (without the old one among the
    # fallbacks) no code can be checked, as in 0.2 itself. (The TOTP secret has its own key.)
    settings.TOTP_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    importers.import_drf_totp_0()
    settings.SECRET_KEY = "another project's secret key, not the one 0.2 used " * 2

    response = post_token(auth_client, VALIDATE, BACKUP_CODES_0_2[2][0])

    assert_error(response, 400, "invalid_token", "token")


def test_backup_code_hashes_not_in_0_2s_form_are_reported(legacy, user):
    auth = legacy.auth(user, last_used_step=now_step() - 1)
    legacy.backup_code(auth, code_hash=BACKUP_CODES_0_2[1][1])
    legacy.backup_code(auth, code_hash="pbkdf2_sha256$720000$salt$hash")

    report = importers.import_drf_totp_0()

    assert only(report, "imported").notes == ("1 unused recovery code(s) imported",)
    assert reasons(report) == {
        f"drf-totp 0.2 backup codes of TOTPAuth #{auth}": (
            '1 backup code hash(es) not in the form drf-totp 0.2 wrote ("hmac_sha256$" and 64 '
            "hex digits); the user should generate new recovery codes"
        )
    }
