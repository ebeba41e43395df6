"""The hot path's SQL (drf_totp/statements.py) says what the ORM's rules say.

``accept`` writes out "a later step than the last one" (``verification.Accepted.row``) as SQL:
over every kind of row state, locked ones included (the guess was reserved before, and the lock
its reservation set must not refuse its own success), it must take exactly the rows the ORM
query selects, and record the success exactly as the ORM update would. The reserving statement
is held to the lock rule in tests/test_lockout_rule.py.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from drf_totp import recovery, statements
from drf_totp.models import RecoveryCode, TOTPDevice, VerifiedToken
from drf_totp.settings import totp_settings
from drf_totp.verification import Accepted

pytestmark = pytest.mark.usefixtures("clock")

STEP = 1_000


def states():
    now = timezone.now()
    limit = totp_settings.MAX_FAILURES
    failure_counts = [0, 3, limit - 1, limit, limit + 5]
    locks = [
        None,
        now - timedelta(seconds=1),
        now,
        now + timedelta(microseconds=1),
        now + timedelta(hours=1),
    ]
    last_steps = [0, STEP - 1, STEP, STEP + 1]
    return now, list(itertools.product(failure_counts, locks, last_steps))


@pytest.mark.django_db
def test_accept_takes_exactly_the_rows_the_orm_rule_selects(make_device):
    now, grid = states()
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"state-{n}") for n in range(len(grid))
    )
    rows = [
        make_device(
            user, failure_count=failures, locked_until=lock, last_used_step=last, use_count=7
        )
        for user, (failures, lock, last) in zip(users, grid, strict=True)
    ]
    expected = {device.pk for device in rows if Accepted(device, now, STEP).row().exists()}
    assert 0 < len(expected) < len(rows)  # the grid has rows on both sides of the rule

    taken = {device.pk for device in rows if statements.accept(device, STEP, now)}

    assert taken == expected
    for device in TOTPDevice.objects.filter(pk__in=taken):
        assert (device.last_used_step, device.last_used_at, device.use_count) == (STEP, now, 8)
        assert (device.failure_count, device.locked_until) == (0, None)
    untouched = TOTPDevice.objects.exclude(pk__in=taken)
    assert not untouched.filter(last_used_at__isnull=False).exists()
    assert set(untouched.values_list("use_count", flat=True)) == {7}


@pytest.mark.django_db
def test_accept_with_a_mark_writes_the_mark_only_with_the_code(user, make_device):
    now = timezone.now()
    device = make_device(user)

    assert statements.accept(device, STEP, now, mark_digest="a" * 64) == 1
    assert statements.accept(device, STEP, now, mark_digest="b" * 64) == 0  # the step is used up
    assert (
        statements.accept(device, STEP + 1, now + timedelta(seconds=30), mark_digest="a" * 64) == 1
    )

    [mark] = VerifiedToken.objects.all()
    assert (mark.digest, mark.user_id, mark.device_id) == ("a" * 64, user.pk, device.pk)
    assert mark.verified_at == now + timedelta(seconds=30)


@pytest.mark.django_db
def test_confirmed_device_is_the_first_confirmed_one(user, make_device):
    assert statements.confirmed_device(user) is None
    make_device(user, confirmed=False, name="pending")
    assert statements.confirmed_device(user) is None

    first = make_device(user, name="first")
    make_device(user, name="second")

    found = statements.confirmed_device(user)
    assert found is not None
    assert (found.pk, found.secret, found.user) == (first.pk, first.secret, user)


@pytest.mark.django_db
def test_status_device_counts_the_users_unused_recovery_codes_as_the_orm_does(
    user, other_user, make_device
):
    assert statements.status_device(user) is None
    make_device(user, confirmed=False, name="pending")
    confirmed = make_device(user, name="phone")
    recovery.issue(user, timezone.now())
    recovery.issue(other_user, timezone.now())
    three = list(recovery.unused(user.pk).values_list("pk", flat=True)[:3])
    RecoveryCode.objects.filter(pk__in=three).update(used_at=timezone.now())

    found = statements.status_device(user)
    assert found is not None
    device, remaining = found
    assert device.pk == confirmed.pk
    assert remaining == recovery.unused(user.pk).count() == totp_settings.RECOVERY_CODES_COUNT - 3
