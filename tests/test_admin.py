"""Issue #6: the admin shows devices and recovery codes read-only, never a secret or digest, and
resets or unlocks users through the domain (signals, log lines) with an admin LogEntry."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from drf_totp import recovery
from drf_totp.models import RecoveryCode, TOTPDevice

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:drf_totp_totpdevice_changelist"
CODES_CHANGELIST = "admin:drf_totp_recoverycode_changelist"


def stored_secret(device: TOTPDevice) -> str:
    """The secret column as stored (the Fernet token), read past the field's decryption."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT secret FROM {TOTPDevice._meta.db_table} WHERE id = %s", [device.pk])
        return cursor.fetchone()[0]


def assert_hidden(html: str, device: TOTPDevice) -> None:
    for shown in (device.secret, device.secret.lower(), stored_secret(device)):
        assert shown not in html
    assert 'name="secret"' not in html


def select(client: Client, action: str, *devices: TOTPDevice, follow: bool = True):
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [str(d.pk) for d in devices]},
        follow=follow,
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- Pages ---------------------------------------------------------------------------------


def test_device_changelist_lists_devices_but_never_the_secret(admin_client, user, make_device):
    device = make_device(user, failure_count=3)

    response = admin_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    html = response.content.decode()
    assert "alice" in html
    assert_hidden(html, device)


def test_device_change_page_shows_state_read_only_and_never_the_secret(
    admin_client, user, make_device
):
    device = make_device(user, last_used_step=123456789, use_count=7)

    response = admin_client.get(reverse("admin:drf_totp_totpdevice_change", args=[device.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "123456789" in html
    assert_hidden(html, device)
    assert response.context["adminform"].form.fields == {}  # nothing editable
    assert not response.context["has_change_permission"]


def test_pending_device_page_hides_its_secret_too(admin_client, user, make_device):
    device = make_device(user, confirmed=False)

    html = admin_client.get(
        reverse("admin:drf_totp_totpdevice_change", args=[device.pk])
    ).content.decode()

    assert_hidden(html, device)


def test_devices_cannot_be_added_edited_or_deleted_in_the_admin(admin_client, user, make_device):
    device = make_device(user)
    change = reverse("admin:drf_totp_totpdevice_change", args=[device.pk])

    assert admin_client.get(reverse("admin:drf_totp_totpdevice_add")).status_code == 403
    assert admin_client.post(change, {"name": "renamed", "is_confirmed": ""}).status_code == 403
    delete = reverse("admin:drf_totp_totpdevice_delete", args=[device.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert TOTPDevice.objects.get(pk=device.pk).name == device.name
    actions = admin_client.get(reverse(CHANGELIST)).context["action_form"].fields["action"]
    assert {value for value, _ in actions.choices} == {"", "reset_2fa", "unlock"}


def test_devices_are_searched_by_username_and_email(admin_client, user, other_user, make_device):
    make_device(user)
    make_device(other_user)

    by_name = admin_client.get(reverse(CHANGELIST), {"q": "alice"}).context["cl"].result_list
    by_email = admin_client.get(reverse(CHANGELIST), {"q": "bob@example"}).context["cl"].result_list

    assert [d.user for d in by_name] == [user]
    assert [d.user for d in by_email] == [other_user]


def test_locked_filter_finds_locked_and_locked_out_devices(
    admin_client, user, other_user, django_user_model, make_device
):
    carol = django_user_model.objects.create_user(username="carol", password="x")
    make_device(user, locked_until=timezone.now() + timedelta(minutes=5), failure_count=5)
    make_device(other_user, failure_count=100)
    make_device(carol, locked_until=timezone.now() - timedelta(minutes=5), failure_count=2)

    def owners(value):
        result = admin_client.get(reverse(CHANGELIST), {"locked": value}).context["cl"].result_list
        return sorted(d.user.username for d in result)

    assert owners("yes") == ["alice", "bob"]
    assert owners("no") == ["carol"]


def test_recovery_code_pages_never_show_the_digest(admin_client, user):
    recovery.issue(user, timezone.now())
    code = RecoveryCode.objects.filter(user=user).first()

    listing = admin_client.get(reverse(CODES_CHANGELIST))
    page = admin_client.get(reverse("admin:drf_totp_recoverycode_change", args=[code.pk]))

    assert listing.status_code == page.status_code == 200
    assert "alice" in listing.content.decode()
    for response in (listing, page):
        html = response.content.decode()
        for digest in RecoveryCode.objects.values_list("digest", flat=True):
            assert digest not in html
    assert admin_client.get(reverse("admin:drf_totp_recoverycode_add")).status_code == 403
    delete = reverse("admin:drf_totp_recoverycode_delete", args=[code.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403


def test_recovery_codes_filter_by_used(admin_client, user):
    recovery.issue(user, timezone.now())
    used = RecoveryCode.objects.filter(user=user).first()
    RecoveryCode.objects.filter(pk=used.pk).update(used_at=timezone.now())

    result = admin_client.get(reverse(CODES_CHANGELIST), {"used_at__isnull": "False"})

    assert [c.pk for c in result.context["cl"].result_list] == [used.pk]


# --- Actions ---------------------------------------------------------------------------------


def test_reset_deletes_device_and_recovery_codes_through_the_domain(
    admin_client,
    admin_user,
    user,
    other_user,
    make_device,
    received,
    caplog,
    django_capture_on_commit_callbacks,
):
    device = make_device(user)
    spare = make_device(user, name="spare", confirmed=False)
    untouched = make_device(other_user)
    recovery.issue(user, timezone.now())
    caplog.set_level(logging.INFO, logger="drf_totp")

    with django_capture_on_commit_callbacks(execute=True):
        response = select(admin_client, "reset_2fa", device)

    assert response.status_code == 200
    assert messages_of(response) == ["Two-factor authentication was reset for 1 user."]
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()
    assert TOTPDevice.objects.filter(pk=untouched.pk).exists()
    # The domain's signal, with the admin's request, and its log line.
    assert [(name, u) for name, u, _ in received] == [("totp_disabled", user)]
    assert received[0][2].user == admin_user
    assert f"totp_disabled user={user.pk}" in caplog.text
    # A deletion LogEntry for every device the reset removed.
    entries = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(TOTPDevice))
    assert sorted((e.object_id, e.action_flag, e.user_id) for e in entries) == sorted(
        [(str(device.pk), DELETION, admin_user.pk), (str(spare.pk), DELETION, admin_user.pk)]
    )


def test_reset_of_several_devices_resets_each_user_once(
    admin_client, user, other_user, make_device, received, django_capture_on_commit_callbacks
):
    first, second = make_device(user), make_device(other_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = select(admin_client, "reset_2fa", first, second)

    assert messages_of(response) == ["Two-factor authentication was reset for 2 users."]
    assert sorted(u.username for _, u, _ in received) == ["alice", "bob"]
    assert not TOTPDevice.objects.exists()


def test_unlock_clears_failures_and_lock_through_the_domain(
    admin_client,
    admin_user,
    user,
    make_device,
    received,
    caplog,
    django_capture_on_commit_callbacks,
):
    device = make_device(user, failure_count=7, locked_until=timezone.now() + timedelta(hours=1))
    caplog.set_level(logging.INFO, logger="drf_totp")

    with django_capture_on_commit_callbacks(execute=True):
        response = select(admin_client, "unlock", device)

    assert messages_of(response) == ["Unlocked 1 user."]
    device.refresh_from_db()
    assert (device.failure_count, device.locked_until) == (0, None)
    assert [(name, u) for name, u, _ in received] == [("totp_unlocked", user)]
    assert received[0][2].user == admin_user
    assert f"totp_unlocked user={user.pk}" in caplog.text
    entry = LogEntry.objects.get()
    assert (entry.object_id, entry.action_flag, entry.user_id) == (
        str(device.pk),
        CHANGE,
        admin_user.pk,
    )
    assert "Unlocked" in entry.get_change_message()


def test_unlock_of_a_user_who_is_not_locked_changes_nothing(
    admin_client, user, make_device, received, django_capture_on_commit_callbacks
):
    device = make_device(user)

    with django_capture_on_commit_callbacks(execute=True):
        response = select(admin_client, "unlock", device)

    assert messages_of(response) == ["Unlocked 0 users. 1 user was not locked."]
    assert received == []
    assert not LogEntry.objects.exists()


@pytest.fixture
def staff_client(django_user_model):
    """A staff user who may only view devices (no delete, no change permission)."""
    staff = django_user_model.objects.create_user(username="staff", password="x", is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(codename="view_totpdevice", content_type__app_label="drf_totp")
    )
    client = Client()
    client.force_login(staff)
    return client


def test_actions_need_the_model_permissions(staff_client, user, make_device):
    device = make_device(user, failure_count=7)

    page = staff_client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert page.context["action_form"] is None  # no action offered

    staff_client.post(
        reverse(CHANGELIST), {"action": "reset_2fa", "_selected_action": [str(device.pk)]}
    )
    staff_client.post(
        reverse(CHANGELIST), {"action": "unlock", "_selected_action": [str(device.pk)]}
    )

    device.refresh_from_db()
    assert device.failure_count == 7
    assert not LogEntry.objects.exists()
