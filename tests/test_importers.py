"""Issue #6: importing devices from django-otp, django-allauth (mfa) and drf-totp 0.x.

django-otp and allauth are the real packages (installed for the tests); their rows are made
with their own models and APIs, and codes are computed with their own code. drf-totp 0.x cannot
be installed beside this package (same import name), so its tables are created with the DDL its
migrations produce on each backend (taken from ``sqlmigrate`` / the migrated schema of 0.1.5
and 0.2.0).
"""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from io import StringIO

import pyotp
import pytest
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal import auth as allauth_totp
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_otp.oath import TOTP as DjangoOTPTOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice as DjangoOTPDevice

from drf_totp import importers, recovery
from drf_totp.models import RecoveryCode, TOTPDevice
from tests.code_checks import VALIDATE, assert_error, post_token

pytestmark = pytest.mark.usefixtures("clock")

KEY_HEX = "3132333435363738393031323334353637383930"  # RFC 6238's key, "1234567890" twice
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def now_step(period: int = 30) -> int:
    return int(time.time()) // period


def only(report: importers.Report, kind: str):
    entries = getattr(report, kind)
    assert len(entries) == 1, entries
    return entries[0]


def reasons(report: importers.Report) -> dict[str, str]:
    return {skip.origin: skip.reason for skip in report.skipped}


# --- django-otp ------------------------------------------------------------------------------


def otp_device(user, **fields) -> DjangoOTPDevice:
    fields.setdefault("key", KEY_HEX)
    fields.setdefault("confirmed", True)
    return DjangoOTPDevice.objects.create(user=user, name=fields.pop("name", "phone"), **fields)


def django_otp_code(device: DjangoOTPDevice, *, shift: int = 0) -> str:
    """The code django-otp itself computes for the device, ``shift`` steps from now."""
    totp = DjangoOTPTOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + shift * device.step
    return f"{totp.token():0{device.digits}d}"


@pytest.mark.django_db
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


@pytest.mark.django_db
def test_code_of_the_django_otp_key_validates_through_the_api(user, auth_client):
    source = otp_device(user, last_t=now_step() - 3)
    importers.import_django_otp()

    response = post_token(auth_client, VALIDATE, django_otp_code(source))

    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_code_of_the_step_django_otp_last_accepted_is_refused(user, auth_client):
    source = otp_device(user)
    code = django_otp_code(source)
    assert source.verify_token(code)  # django-otp accepts it, and records its step in last_t
    source.refresh_from_db()
    importers.import_django_otp()

    response = post_token(auth_client, VALIDATE, code)

    assert_error(response, 400, "token_reused", "token")
    assert TOTPDevice.objects.get(user=user).last_used_step == source.last_t


@pytest.mark.django_db
def test_never_used_django_otp_device_gets_step_zero(user):
    otp_device(user)  # last_t -1: no code was ever accepted

    importers.import_django_otp()

    assert TOTPDevice.objects.get(user=user).last_used_step == 0


@pytest.mark.django_db
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


@pytest.mark.django_db
def test_a_pending_drf_totp_enrollment_is_not_replaced(user, make_device):
    pending = make_device(user, confirmed=False)
    source = otp_device(user)

    report = importers.import_django_otp()

    assert reasons(report) == {
        f'django-otp TOTPDevice #{source.pk} "phone"': (
            "the user has a pending drf_totp enrollment; finish it, or reset it (totp_reset) "
            "and import again"
        )
    }
    assert list(TOTPDevice.objects.filter(user=user)) == [pending]


@pytest.mark.django_db
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


@pytest.mark.django_db
def test_drift_and_tolerance_are_not_kept_and_the_report_says_so(user, settings):
    settings.TOTP_VALID_WINDOW = 1
    otp_device(user, drift=1, tolerance=3)

    imported = only(importers.import_django_otp(), "imported")

    assert imported.notes == (
        "drift of 1 step(s) not kept",
        "tolerance 3 not kept (TOTP_VALID_WINDOW 1 applies)",
    )


@pytest.mark.django_db
def test_django_otp_static_tokens_are_reported_as_not_convertible(user):
    otp_device(user)
    static = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    for _ in range(3):
        StaticToken.objects.create(device=static, token=StaticToken.random_token())

    report = importers.import_django_otp()

    assert reasons(report)[f"django-otp StaticDevice #{static.pk}"].startswith(
        "3 unused recovery code(s) in a form drf_totp does not accept"
    )
    assert not RecoveryCode.objects.exists()


# --- django-allauth --------------------------------------------------------------------------


def allauth_code(secret: str, step: int) -> str:
    """The code allauth itself computes for ``step``."""
    return allauth_totp.format_hotp_value(allauth_totp.hotp_value(secret, step))


class FernetMFAAdapter(DefaultMFAAdapter):
    """An allauth adapter that encrypts secrets, as its docs recommend for production."""

    key = Fernet.generate_key()

    def encrypt(self, text: str) -> str:
        return Fernet(self.key).encrypt(text.encode()).decode()

    def decrypt(self, encrypted_text: str) -> str:
        return Fernet(self.key).decrypt(encrypted_text.encode()).decode()


@pytest.fixture
def encrypting_adapter(settings):
    settings.MFA_ADAPTER = f"{__name__}.FernetMFAAdapter"


@pytest.mark.django_db
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


@pytest.mark.django_db
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


@pytest.mark.django_db
def test_allauth_tolerance_moves_the_last_step_past_every_code_it_accepted(user, settings):
    settings.MFA_TOTP_TOLERANCE = 1
    allauth_totp.TOTP.activate(user, SECRET)

    imported = only(importers.import_allauth(), "imported")

    assert TOTPDevice.objects.get(user=user).last_used_step == now_step() + 1
    assert "plus its tolerance (1)" in imported.notes[0]


@pytest.mark.django_db
def test_allauth_numeric_recovery_codes_are_skipped_with_the_reason(user):
    allauth_totp.TOTP.activate(user, SECRET)
    codes = RecoveryCodes.activate(user)
    assert codes.validate_code(codes.get_unused_codes()[0])  # one used: 9 left

    report = importers.import_allauth()

    assert not any("recovery" in note for note in only(report, "imported").notes)
    assert reasons(report) == {
        f"allauth recovery codes #{codes.instance.pk}": (
            "9 unused recovery code(s) in a form drf_totp does not accept (it takes 20 "
            "characters of its own alphabet); the user should generate new ones"
        )
    }
    assert not RecoveryCode.objects.exists()


@pytest.mark.django_db
def test_allauth_recovery_codes_in_a_form_drf_totp_accepts_are_imported_hashed(
    user, auth_client, encrypting_adapter
):
    allauth_totp.TOTP.activate(user, SECRET)
    shown = [recovery.generate()[1] for _ in range(3)]
    adapter = FernetMFAAdapter()
    Authenticator.objects.create(
        user=user,
        type=Authenticator.Type.RECOVERY_CODES,
        data={"migrated_codes": [adapter.encrypt(code) for code in shown]},
    )

    report = importers.import_allauth()

    assert "3 unused recovery code(s) imported" in only(report, "imported").notes
    stored = set(RecoveryCode.objects.filter(user=user).values_list("digest", flat=True))
    assert len(stored) == 3 and not any(code in stored for code in shown)
    response = post_token(auth_client, VALIDATE, shown[1])
    assert response.status_code == 200, response.content
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=True).count() == 2


@pytest.mark.django_db
def test_allauth_skips_are_reported(user, other_user, make_device, settings):
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


@pytest.mark.django_db
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


@pytest.mark.django_db
def test_allauth_period_out_of_range_is_skipped(user, settings):
    settings.MFA_TOTP_PERIOD = 300
    allauth_totp.TOTP.activate(user, SECRET)

    report = importers.import_allauth()

    assert only(report, "skipped").reason == "a period of 300s is not supported (only 15 to 120s)"


# --- drf-totp 0.x ----------------------------------------------------------------------------

# drf-totp 0.2.0 after its migrations 0001_initial and 0002_security_hardening, as each backend
# has it; 0.1.x had 0001_initial only.
LEGACY_DDL = {
    ("0.2", "sqlite"): [
        'CREATE TABLE "drf_totp_totpauth" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, '
        '"otp_enabled" bool NOT NULL, "otp_verified" bool NOT NULL, "created_at" datetime NOT NULL, '
        '"updated_at" datetime NOT NULL, "user_id" integer NOT NULL UNIQUE REFERENCES "auth_user" '
        '("id") DEFERRABLE INITIALLY DEFERRED, "failed_attempts" integer unsigned NOT NULL CHECK '
        '("failed_attempts" >= 0), "last_used_at" datetime NULL, "last_used_step" bigint NULL, '
        '"locked_until" datetime NULL, "otp_base32" varchar(255) NULL)',
        'CREATE TABLE "drf_totp_totpbackupcode" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, '
        '"code_hash" varchar(128) NOT NULL, "used_at" datetime NULL, "created_at" datetime NOT NULL, '
        '"auth_id" bigint NOT NULL REFERENCES "drf_totp_totpauth" ("id") DEFERRABLE INITIALLY '
        "DEFERRED)",
        'CREATE INDEX "drf_totp_totpbackupcode_auth_id_f258333d" ON "drf_totp_totpbackupcode" '
        '("auth_id")',
    ],
    ("0.2", "postgresql"): [
        'CREATE TABLE "drf_totp_totpauth" ("id" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT '
        'AS IDENTITY, "otp_enabled" boolean NOT NULL, "otp_verified" boolean NOT NULL, "otp_base32" '
        'varchar(255) NULL, "created_at" timestamp with time zone NOT NULL, "updated_at" timestamp '
        'with time zone NOT NULL, "user_id" integer NOT NULL UNIQUE, "failed_attempts" integer NOT '
        'NULL CHECK ("failed_attempts" >= 0), "last_used_at" timestamp with time zone NULL, '
        '"last_used_step" bigint NULL, "locked_until" timestamp with time zone NULL)',
        'ALTER TABLE "drf_totp_totpauth" ADD CONSTRAINT "drf_totp_totpauth_user_id_733cc70f_fk_auth_'
        'user_id" FOREIGN KEY ("user_id") REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY DEFERRED',
        'CREATE TABLE "drf_totp_totpbackupcode" ("id" bigint NOT NULL PRIMARY KEY GENERATED BY '
        'DEFAULT AS IDENTITY, "code_hash" varchar(128) NOT NULL, "used_at" timestamp with time zone '
        'NULL, "created_at" timestamp with time zone NOT NULL, "auth_id" bigint NOT NULL)',
        'ALTER TABLE "drf_totp_totpbackupcode" ADD CONSTRAINT "drf_totp_totpbackupc_auth_id_f258333d_'
        'fk_drf_totp_" FOREIGN KEY ("auth_id") REFERENCES "drf_totp_totpauth" ("id") DEFERRABLE '
        "INITIALLY DEFERRED",
        'CREATE INDEX "drf_totp_totpbackupcode_auth_id_f258333d" ON "drf_totp_totpbackupcode" '
        '("auth_id")',
    ],
    ("0.2", "mysql"): [
        "CREATE TABLE `drf_totp_totpauth` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, "
        "`otp_enabled` bool NOT NULL, `otp_verified` bool NOT NULL, `otp_base32` varchar(255) NULL, "
        "`created_at` datetime(6) NOT NULL, `updated_at` datetime(6) NOT NULL, `user_id` integer NOT "
        "NULL UNIQUE, `failed_attempts` integer UNSIGNED NOT NULL CHECK (`failed_attempts` >= 0), "
        "`last_used_at` datetime(6) NULL, `last_used_step` bigint NULL, `locked_until` datetime(6) "
        "NULL)",
        "ALTER TABLE `drf_totp_totpauth` ADD CONSTRAINT `drf_totp_totpauth_user_id_733cc70f_fk_auth_"
        "user_id` FOREIGN KEY (`user_id`) REFERENCES `auth_user` (`id`)",
        "CREATE TABLE `drf_totp_totpbackupcode` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, "
        "`code_hash` varchar(128) NOT NULL, `used_at` datetime(6) NULL, `created_at` datetime(6) NOT "
        "NULL, `auth_id` bigint NOT NULL)",
        "ALTER TABLE `drf_totp_totpbackupcode` ADD CONSTRAINT `drf_totp_totpbackupcode_auth_id_"
        "f258333d_fk_drf_totp_totpauth_id` FOREIGN KEY (`auth_id`) REFERENCES `drf_totp_totpauth` "
        "(`id`)",
    ],
    ("0.1", "sqlite"): [
        'CREATE TABLE "drf_totp_totpauth" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, '
        '"otp_enabled" bool NOT NULL, "otp_verified" bool NOT NULL, "otp_base32" varchar(255) NULL, '
        '"otp_auth_url" varchar(255) NULL, "created_at" datetime NOT NULL, "updated_at" datetime NOT '
        'NULL, "user_id" integer NOT NULL UNIQUE REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY '
        "DEFERRED)",
    ],
    ("0.1", "postgresql"): [
        'CREATE TABLE "drf_totp_totpauth" ("id" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT '
        'AS IDENTITY, "otp_enabled" boolean NOT NULL, "otp_verified" boolean NOT NULL, "otp_base32" '
        'varchar(255) NULL, "otp_auth_url" varchar(255) NULL, "created_at" timestamp with time zone '
        'NOT NULL, "updated_at" timestamp with time zone NOT NULL, "user_id" integer NOT NULL UNIQUE)',
        'ALTER TABLE "drf_totp_totpauth" ADD CONSTRAINT "drf_totp_totpauth_user_id_733cc70f_fk_auth_'
        'user_id" FOREIGN KEY ("user_id") REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY DEFERRED',
    ],
    ("0.1", "mysql"): [
        "CREATE TABLE `drf_totp_totpauth` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, "
        "`otp_enabled` bool NOT NULL, `otp_verified` bool NOT NULL, `otp_base32` varchar(255) NULL, "
        "`otp_auth_url` varchar(255) NULL, `created_at` datetime(6) NOT NULL, `updated_at` "
        "datetime(6) NOT NULL, `user_id` integer NOT NULL UNIQUE)",
        "ALTER TABLE `drf_totp_totpauth` ADD CONSTRAINT `drf_totp_totpauth_user_id_733cc70f_fk_auth_"
        "user_id` FOREIGN KEY (`user_id`) REFERENCES `auth_user` (`id`)",
    ],
}


class LegacyTables:
    """drf-totp 0.x's tables in the test database, and rows written into them as 0.x would."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        with connection.cursor() as cursor:
            for statement in LEGACY_DDL[schema, connection.vendor]:
                cursor.execute(statement)

    def drop(self) -> None:
        with connection.cursor() as cursor:
            for table in ("drf_totp_totpbackupcode", "drf_totp_totpauth"):
                if table in connection.introspection.table_names(cursor):
                    cursor.execute(f"DROP TABLE {connection.ops.quote_name(table)}")

    def insert(self, table: str, **values) -> int:
        quote = connection.ops.quote_name
        adapt = connection.ops.adapt_datetimefield_value
        values = {k: adapt(v) if hasattr(v, "tzinfo") else v for k, v in values.items()}
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {quote(table)} ({', '.join(quote(k) for k in values)}) "
                f"VALUES ({', '.join(['%s'] * len(values))})",
                list(values.values()),
            )
            cursor.execute(f"SELECT MAX({quote('id')}) FROM {quote(table)}")
            return cursor.fetchone()[0]

    def auth(self, user, *, secret: str | None = SECRET, verified: bool = True, **extra) -> int:
        now = timezone.now()
        row = {
            "user_id": user.pk,
            "otp_enabled": verified,
            "otp_verified": verified,
            "otp_base32": secret,
            "created_at": now - timedelta(days=30),
            "updated_at": now,
        }
        if self.schema == "0.2":
            row["failed_attempts"] = 0
        return self.insert("drf_totp_totpauth", **{**row, **extra})

    def backup_code(self, auth_id: int, *, used: bool = False) -> None:
        now = timezone.now()
        self.insert(
            "drf_totp_totpbackupcode",
            auth_id=auth_id,
            code_hash="hmac_sha256$" + "0" * 64,
            used_at=now if used else None,
            created_at=now,
        )


@pytest.fixture
def legacy(request, transactional_db):
    """drf-totp 0.2's tables; ``@pytest.mark.parametrize("legacy", ["0.1"], indirect=True)``
    for 0.1's. DDL commits on MySQL, so these tests run outside a test transaction."""
    tables = LegacyTables(getattr(request, "param", "0.2"))
    yield tables
    tables.drop()


def fernet_0x(key: bytes, secret: str) -> str:
    """A secret as drf-totp 0.2 stored it with TOTP_ENCRYPTION_KEY set."""
    return "fernet$" + Fernet(key).encrypt(secret.encode()).decode()


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
    settings.TOTP_DIGITS = 7  # 0.x allowed 6 to 8 digits
    pending = legacy.auth(user, verified=False)
    make_device(other_user)
    theirs = legacy.auth(other_user)
    locked_away = legacy.auth(carol, secret=fernet_0x(Fernet.generate_key(), SECRET))
    no_secret = legacy.auth(dave, secret=None)
    seven = legacy.auth(erin, last_used_step=now_step())
    legacy.backup_code(seven)
    legacy.backup_code(seven)
    legacy.backup_code(seven, used=True)

    report = importers.import_drf_totp_0()

    assert report.imported == []
    auth = "drf-totp 0.x TOTPAuth #{}".format
    assert reasons(report) == {
        auth(pending): "not confirmed (enrollment never finished)",
        auth(theirs): "the user already has a drf_totp device",
        auth(locked_away): "the secret is encrypted and TOTP_ENCRYPTION_KEY (0.x's key) is not set",
        auth(no_secret): "the row has no secret",
        auth(seven): "7-digit codes are not supported (only 6 or 8)",
        f"drf-totp 0.x backup codes of TOTPAuth #{seven}": (
            "2 unused backup code(s) are stored as keyed hashes, which cannot be converted; the "
            "user should generate new recovery codes"
        ),
    }


def test_drf_totp_0_secret_under_another_key_is_skipped(legacy, user, settings):
    settings.TOTP_ENCRYPTION_KEY = Fernet.generate_key().decode()
    row = legacy.auth(user, secret=fernet_0x(Fernet.generate_key(), SECRET))

    report = importers.import_drf_totp_0()

    assert reasons(report) == {
        f"drf-totp 0.x TOTPAuth #{row}": "the secret could not be decrypted with TOTP_ENCRYPTION_KEY"
    }


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


# --- All sources: dry run, idempotence, the command ------------------------------------------


@pytest.fixture
def everywhere(legacy, user, other_user, django_user_model):
    """A user in each source, and one (alice) in all three."""
    carol = django_user_model.objects.create_user(username="carol", password="x")
    otp_device(user, last_t=now_step() - 1)
    allauth_totp.TOTP.activate(user, SECRET)
    allauth_totp.TOTP.activate(other_user, SECRET)
    legacy.auth(user, last_used_step=now_step() - 1)
    legacy.auth(carol, last_used_step=now_step() - 1)
    return legacy


def test_each_user_is_imported_once_from_the_first_source(everywhere):
    reports = importers.import_all()

    assert [(r.source, [i.user for i in r.imported]) for r in reports] == [
        ("django-otp", ["alice"]),
        ("allauth", ["bob"]),
        ("drf-totp-0", ["carol"]),
    ]
    assert [
        s.reason.endswith("was imported for this user") for r in reports[1:] for s in r.skipped
    ] == [True, True]
    assert TOTPDevice.objects.count() == 3


def test_dry_run_reports_the_same_and_writes_nothing(everywhere):
    dry = importers.import_all(dry_run=True)

    assert TOTPDevice.objects.count() == 0
    assert RecoveryCode.objects.count() == 0
    real = importers.import_all()
    for a, b in zip(dry, real, strict=True):
        assert (a.dry_run, b.dry_run) == (True, False)
        assert (a.imported, a.skipped) == (b.imported, b.skipped)


def test_second_run_imports_nothing_new(everywhere):
    importers.import_all()
    devices = list(TOTPDevice.objects.order_by("pk").values_list("pk", "user_id", "last_used_step"))

    again = importers.import_all()

    assert [r.imported for r in again] == [[], [], []]
    assert {s.reason for r in again for s in r.skipped} == {
        "the user already has a drf_totp device"
    }
    assert (
        list(TOTPDevice.objects.order_by("pk").values_list("pk", "user_id", "last_used_step"))
        == devices
    )


def test_unknown_source_is_refused():
    with pytest.raises(ValueError, match="Unknown source"):
        importers.import_all(["django-two-factor"])


def run_import(*args: str) -> str:
    out = StringIO()
    call_command("totp_import", *args, stdout=out)
    return out.getvalue()


def test_import_command_reports_what_it_would_do_in_a_dry_run(everywhere, user):
    output = run_import("--dry-run")

    lines = output.splitlines()
    assert lines[0] == "django-otp: would import 1, skipped 0"
    assert lines[1].startswith("  would import alice: django-otp TOTPDevice #")
    assert "allauth: would import 1, skipped 1" in lines
    assert any(line.startswith("  skipped alice: allauth TOTP authenticator #") for line in lines)
    assert lines[-1] == "Dry run: 3 device(s) would be imported; nothing was written."
    assert not TOTPDevice.objects.exists()


def test_import_command_imports_from_the_sources_asked(everywhere):
    output = run_import("--from", "drf-totp-0")

    assert output.splitlines()[0] == "drf-totp-0: imported 2, skipped 0"
    assert output.splitlines()[-1] == "Imported 2 device(s)."
    assert sorted(TOTPDevice.objects.values_list("user__username", flat=True)) == ["alice", "carol"]
    assert "imported 0, skipped 2" in run_import("--from", "drf-totp-0")


@pytest.mark.django_db
def test_import_command_says_when_a_source_has_nothing(user):
    output = run_import("--from", "drf-totp-0", "--from", "django-otp")

    assert output.splitlines() == [
        "drf-totp-0: nothing to import (no drf-totp 0.x tables)",
        "django-otp: imported 0, skipped 0",
        "Imported 0 device(s).",
    ]


@pytest.mark.django_db
def test_import_command_rejects_an_unknown_source():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="invalid choice"):
        run_import("--from", "nope")
