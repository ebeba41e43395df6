"""The guess limit's rule, written three times in drf_totp/lockout.py, held to one table of cases.

Over every kind of row state (failure counts around the limit, locks past, ending now and to
come) and both kinds of code, the Python form (``refusal``, which also answers ``is_locked``
and what status reports), the ORM filter (``unlocked``, the admin's filter) and the SQL of the
reserving statement (``reserve``) agree on which rows may have a code checked; the reservation
counts one failure and sets exactly the lock ``lock_seconds`` gives that failure, and touches
nothing else.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from drf_totp import exceptions, lockout
from drf_totp.models import TOTPDevice
from drf_totp.settings import totp_settings

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


def states():
    now = timezone.now()
    limit = totp_settings.MAX_FAILURES
    failure_counts = [0, 3, 4, 5, 11, limit - 1, limit, limit + 5]
    locks = [
        None,
        now - timedelta(seconds=1),
        now,
        now + timedelta(microseconds=1),
        now + timedelta(hours=1),
    ]
    return now, list(itertools.product(failure_counts, locks))


@pytest.fixture
def rows(make_device):
    now, grid = states()
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"rule-{n}") for n in range(len(grid))
    )
    devices = [
        make_device(user, failure_count=failures, locked_until=lock, use_count=3)
        for user, (failures, lock) in zip(users, grid, strict=True)
    ]
    return now, devices


@pytest.mark.parametrize("totp", [True, False], ids=["totp", "recovery"])
def test_python_orm_and_sql_forms_of_the_rule_agree(rows, totp):
    now, devices = rows
    python = {
        d.pk
        for d in devices
        if lockout.refusal(d.failure_count, d.locked_until, now, totp=totp) is None
    }
    orm = set(
        TOTPDevice.objects.filter(lockout.unlocked(now, totp=totp)).values_list("pk", flat=True)
    )
    assert 0 < len(python) < len(devices)  # the grid has rows on both sides of the rule
    assert {d.pk for d in devices if not lockout.is_locked(d, now, totp=totp)} == python

    sql = {
        d.pk
        for d in devices
        if lockout.reserve(lockout.Row(d.user, pk=d.pk), now, totp=totp).reserved
    }

    assert python == orm == sql


@pytest.mark.parametrize("totp", [True, False], ids=["totp", "recovery"])
def test_a_reservation_counts_one_failure_and_sets_the_lock_it_earns(rows, totp):
    now, devices = rows
    for device in devices:
        reservation = lockout.reserve(lockout.Row(device.user), now, totp=totp)
        after = TOTPDevice.objects.get(pk=device.pk)
        if not reservation.reserved:
            assert (after.failure_count, after.locked_until) == (
                device.failure_count,
                device.locked_until,
            )
            continue
        failures = device.failure_count + 1
        seconds = lockout.lock_seconds(failures)
        lock = now + timedelta(seconds=seconds) if seconds else None
        assert (after.failure_count, after.locked_until) == (failures, lock)
        # The reservation returns the row as it left it (the state the signals report).
        returned = reservation.device
        assert returned is not None and returned.user == device.user
        assert (returned.failure_count, returned.locked_until) == (failures, lock)
        assert (after.use_count, after.last_used_step, after.secret) == (
            3,
            device.last_used_step,
            device.secret,
        )


def test_the_refusal_says_locked_out_for_totp_and_locked_while_a_lock_holds(user, make_device):
    now = timezone.now()
    device = make_device(
        user,
        failure_count=totp_settings.MAX_FAILURES,
        locked_until=now + timedelta(seconds=10),
    )

    assert isinstance(
        lockout.refusal(device.failure_count, device.locked_until, now, totp=True),
        exceptions.LockedOut,
    )
    locked = lockout.refusal(device.failure_count, device.locked_until, now, totp=False)
    assert isinstance(locked, exceptions.Locked) and locked.wait == 10
    assert lockout.locked_until(device, now) == device.locked_until
    assert lockout.locked_until(device, now + timedelta(seconds=10)) is None
    assert lockout.locked_out(device)


def test_a_reservation_by_user_takes_the_first_device_of_the_kind_asked(user, make_device):
    now = timezone.now()
    pending = make_device(user, confirmed=False, name="pending")
    first = make_device(user, name="first")
    second = make_device(user, name="second")

    confirmed = lockout.reserve(lockout.Row(user), now, totp=True, digits=6)
    waiting = lockout.reserve(lockout.Row(user, confirmed=False), now, totp=True, digits=6)

    assert confirmed.reserved and confirmed.device is not None
    assert waiting.reserved and waiting.device is not None
    assert (confirmed.device.pk, waiting.device.pk) == (first.pk, pending.pk)
    counts = dict(TOTPDevice.objects.values_list("pk", "failure_count"))
    assert counts == {pending.pk: 1, first.pk: 1, second.pk: 0}


def test_a_reservation_asks_for_the_devices_number_of_digits(user, make_device):
    now = timezone.now()
    device = make_device(user, digits=8)

    other = lockout.reserve(lockout.Row(user), now, totp=True, digits=6)
    same = lockout.reserve(lockout.Row(user), now, totp=True, digits=8)

    assert not other.reserved and other.device is not None and other.device.digits == 8
    assert same.reserved
    assert TOTPDevice.objects.get(pk=device.pk).failure_count == 1


def test_without_a_device_nothing_is_reserved(user):
    reservation = lockout.reserve(lockout.Row(user), timezone.now(), totp=True)
    assert reservation == lockout.Reservation(None, False)


def test_a_release_undoes_its_reservation_and_only_its_own_lock(user, make_device):
    now = timezone.now()
    device = make_device(user, failure_count=4)
    reserved = lockout.reserve(lockout.Row(user), now, totp=True).device
    assert reserved is not None and reserved.locked_until == now + timedelta(seconds=30)

    lockout.release(reserved)

    after = TOTPDevice.objects.get(pk=device.pk)
    assert (after.failure_count, after.locked_until) == (4, None)


def test_a_release_keeps_failures_and_locks_counted_by_others_since(user, make_device):
    now = timezone.now()
    device = make_device(user, failure_count=3)
    mine = lockout.reserve(lockout.Row(user), now, totp=True).device  # the 4th: no lock
    theirs = lockout.reserve(lockout.Row(user), now, totp=True).device  # the 5th: 30 s
    assert mine is not None and theirs is not None

    lockout.release(mine)

    after = TOTPDevice.objects.get(pk=device.pk)
    assert (after.failure_count, after.locked_until) == (4, theirs.locked_until)


def test_a_release_after_a_success_has_nothing_to_undo(user, make_device):
    now = timezone.now()
    device = make_device(user, failure_count=2)
    mine = lockout.reserve(lockout.Row(user), now, totp=True).device
    assert mine is not None
    # Another request's code was accepted (the count reset), then a new failure was counted.
    TOTPDevice.objects.filter(pk=device.pk).update(use_count=4, failure_count=0)
    lockout.reserve(lockout.Row(user), now, totp=True)

    lockout.release(mine)

    assert TOTPDevice.objects.get(pk=device.pk).failure_count == 1
