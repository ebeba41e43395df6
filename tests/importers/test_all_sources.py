"""Importing from every source at once (issues #6 and #13): a user once, a dry run that writes
nothing, a second run that imports nothing new, and never a device that was imported before,
so that ``disable/`` or ``totp_reset`` is not undone by the next run; the ``totp_import``
command and its ``--reimport``."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError
from django.db import connection

from drf_totp import devices, importers
from drf_totp.models import ImportRecord, RecoveryCode, TOTPDevice
from tests.code_checks import DISABLE, VALIDATE, assert_error, post_token
from tests.importers.sources import (
    SECRET,
    allauth_code,
    allauth_totp,
    django_otp_code,
    now_step,
    only,
    otp_device,
    reasons,
    run_import,
)


def devices_of() -> list[str]:
    """The users with a drf_totp device."""
    return sorted(TOTPDevice.objects.values_list("user__username", flat=True))


# --- one run, several sources -----------------------------------------------------------------


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
    assert ImportRecord.objects.count() == 0
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


def test_the_public_names_stay_importable_from_the_package():
    from drf_totp.importers import (  # noqa: F401
        ALLAUTH,
        ALREADY_ENABLED,
        DJANGO_OTP,
        DRF_TOTP_0,
        LEGACY_AUTH_TABLE,
        LEGACY_BACKUP_TABLE,
        PERIOD_RANGE,
        SOURCES,
        SUPPORTED_DIGITS,
        Imported,
        Report,
        Skipped,
        import_all,
        import_allauth,
        import_django_otp,
        import_drf_totp_0,
    )

    assert SOURCES == ("django-otp", "allauth", "drf-totp-0")
    assert all(hasattr(importers, name) for name in importers.__all__)


# --- never twice: a disabled or reset device stays gone ------------------------------------------


@pytest.mark.django_db
def test_the_import_is_recorded_with_its_source_and_id(user):
    source = otp_device(user)

    importers.import_django_otp()

    record = ImportRecord.objects.get()
    assert (record.user, record.source, record.source_id) == (user, "django-otp", str(source.pk))


@pytest.mark.django_db
def test_after_totp_reset_the_django_otp_device_is_not_imported_again(user):
    source = otp_device(user)
    importers.import_django_otp()
    assert devices.reset(user)  # "lost both the authenticator and the recovery codes"

    report = importers.import_django_otp()

    assert report.imported == []
    assert reasons(report) == {
        f'django-otp TOTPDevice #{source.pk} "phone"': (
            f"a device was imported for this user before (django-otp #{source.pk} on "
            f"{ImportRecord.objects.get().imported_at:%Y-%m-%d}); to import again on purpose: "
            "totp_import --reimport alice"
        )
    }
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert ImportRecord.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_after_disable_the_allauth_secret_stays_dead(user, auth_client, clock):
    allauth_totp.TOTP.activate(user, SECRET)
    importers.import_allauth()
    clock.shift(30)
    assert post_token(auth_client, DISABLE, allauth_code(SECRET, now_step())).status_code == 200

    assert importers.import_allauth().imported == []

    clock.shift(30)
    assert_error(
        post_token(auth_client, VALIDATE, allauth_code(SECRET, now_step())), 409, "not_enabled"
    )


def test_after_reset_the_drf_totp_0_row_is_not_imported_again(legacy, user):
    legacy.auth(user, last_used_step=now_step() - 1)
    importers.import_drf_totp_0()
    devices.reset(user)

    assert importers.import_drf_totp_0().imported == []
    assert not TOTPDevice.objects.exists()


@pytest.mark.django_db
def test_after_reset_another_sources_old_device_is_not_imported_either(user):
    otp_device(user)
    importers.import_django_otp()
    devices.reset(user)
    allauth_totp.TOTP.activate(user, SECRET)  # an older second factor, never imported

    report = importers.import_allauth()

    assert only(report, "skipped").reason.startswith("a device was imported for this user before")


@pytest.mark.django_db
def test_a_user_re_enrolled_in_drf_totp_keeps_the_new_device(user, make_device):
    otp_device(user)
    importers.import_django_otp()
    devices.reset(user)
    mine = make_device(user)

    assert only(importers.import_django_otp(), "skipped").reason == importers.ALREADY_ENABLED
    assert list(TOTPDevice.objects.all()) == [mine]


@pytest.mark.django_db
def test_the_record_outlives_the_device(user):
    otp_device(user)
    importers.import_django_otp()

    TOTPDevice.objects.filter(user=user).delete()

    assert ImportRecord.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_reimport_imports_the_named_user_again_and_only_them(user, other_user, auth_client):
    source = otp_device(user, last_t=now_step() - 1)
    importers.import_django_otp()
    devices.reset(user)
    otp_device(other_user)  # bob: never imported, and not named

    report = importers.import_django_otp(reimport=[user.pk])

    imported = only(report, "imported")
    assert imported.user == "alice"
    assert imported.notes[-1].startswith(
        f"imported again; imported before: django-otp #{source.pk}"
    )
    assert report.skipped == []
    assert devices_of() == ["alice"]
    assert post_token(auth_client, VALIDATE, django_otp_code(source)).status_code == 200
    assert ImportRecord.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_reimport_does_not_replace_a_device_the_user_has(user):
    otp_device(user)
    importers.import_django_otp()

    report = importers.import_django_otp(reimport=[user.pk])

    assert only(report, "skipped").reason == importers.ALREADY_ENABLED


# --- the command --------------------------------------------------------------------------------


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
    assert devices_of() == ["alice", "carol"]
    assert "imported 0, skipped 2" in run_import("--from", "drf-totp-0")


@pytest.mark.django_db
def test_import_command_says_per_user_when_a_secret_is_weak(user):
    source = otp_device(user, key="31323334353637383930")

    output = run_import("--from", "django-otp")

    assert (
        f'  imported alice: django-otp TOTPDevice #{source.pk} "phone" (weak secret: 80 bits)'
        in (output.splitlines())
    )


@pytest.mark.django_db
def test_import_command_reimports_a_user_named(user):
    otp_device(user)
    run_import("--from", "django-otp")
    devices.reset(user)
    assert "imported 0, skipped 1" in run_import("--from", "django-otp")

    output = run_import("--from", "django-otp", "--reimport", "alice")

    assert output.splitlines()[0] == "django-otp: imported 1, skipped 0"
    assert devices_of() == ["alice"]


@pytest.mark.django_db
def test_import_command_refuses_an_unknown_user_to_reimport(user):
    with pytest.raises(CommandError, match="No user with username 'nobody'"):
        run_import("--reimport", "nobody")


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
    with pytest.raises(CommandError, match="invalid choice"):
        run_import("--from", "nope")


@pytest.mark.django_db(transaction=True)
def test_runs_at_the_same_time_import_a_user_once(user, in_threads):
    otp_device(user)

    results = in_threads(4, lambda client, i: importers.import_django_otp())

    reports = [r for r in results if isinstance(r, importers.Report)]
    errors = [r for r in results if not isinstance(r, importers.Report)]
    if connection.vendor == "sqlite":
        # One writer at a time, and a run reads before it writes: the others stop at their first
        # write, in their one transaction, having written nothing.
        assert all("database is locked" in str(error) for error in errors), errors
    else:
        assert errors == []
    assert sum(len(r.imported) for r in reports) == 1
    assert (TOTPDevice.objects.count(), ImportRecord.objects.count()) == (1, 1)
