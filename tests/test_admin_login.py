"""Issue #11, item 3: the Django admin is not a door that the password alone opens.

``OTPAdminSite`` (``admin.site`` here: tests/settings.py installs ``OTPAdminConfig``) logs a user
with 2FA in with the password and a code, checked like every code (budget, lock, replay), and
its pages need a session that passed the second factor on the user's current device. On any
admin site, the actions never reset or unlock the acting user's own device from a session that
did not pass it (``plain-admin/`` is a plain ``AdminSite``, tests/urls.py).
"""

from __future__ import annotations

import runpy
from datetime import timedelta
from pathlib import Path

import django
import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from drf_totp import devices, marks, recovery
from drf_totp.admin_site import OTPAdminSite
from drf_totp.models import RecoveryCode, TOTPDevice
from tests.code_checks import SECRET, current_code, reload, step_at, wrong

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]

LOGIN = "/admin/login/"
INDEX = "/admin/"
DEVICES = "/admin/drf_totp/totpdevice/"
PLAIN_DEVICES = "/plain-admin/drf_totp/totpdevice/"


@pytest.fixture
def root(django_user_model, password):
    return django_user_model.objects.create_superuser(
        username="root", email="root@example.com", password=password
    )


@pytest.fixture
def roots_device(root, make_device) -> TOTPDevice:
    return make_device(root, secret=SECRET)


def log_in(client: Client, password: str, code: str | None = None, username: str = "root"):
    body = {"username": username, "password": password, "next": INDEX}
    if code is not None:
        body["otp_token"] = code
    return client.post(LOGIN, body)


def form_errors(response) -> dict[str, list[str]]:
    """The login form's errors by field, as codes (``__all__`` for the form's own)."""
    form = response.context["form"]
    return {field: [e.code for e in errors.as_data()] for field, errors in form.errors.items()}


def logged_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def opens_the_admin(client: Client) -> bool:
    response = client.get(INDEX)
    if response.status_code == 302:
        assert response["Location"].startswith(LOGIN)
        return False
    assert response.status_code == 200
    return True


def test_the_default_site_is_drf_totps_with_otp_admin_config():
    assert isinstance(admin.site, OTPAdminSite)


# --- The login -----------------------------------------------------------------------------------


def test_the_password_alone_does_not_log_a_user_with_2fa_in(client, password, roots_device):
    response = log_in(client, password)

    assert response.status_code == 200
    assert form_errors(response) == {"otp_token": ["invalid_format"]}
    assert "Enter the 6-digit code from your authenticator app" in response.content.decode()
    assert not logged_in(client)
    assert not opens_the_admin(client)
    assert reload(roots_device).failure_count == 0  # no code, nothing guessed


def test_the_password_and_a_code_log_in_and_open_the_admin(client, password, roots_device):
    code = current_code(roots_device)

    response = log_in(client, password, code)

    assert response.status_code == 302
    assert response["Location"] == INDEX
    assert logged_in(client)
    assert client.session[marks.SESSION_KEY]["device"] == roots_device.pk
    assert opens_the_admin(client)
    assert client.get(DEVICES).status_code == 200
    # The code went through the one code check: it is used up.
    assert reload(roots_device).last_used_step == step_at(roots_device)


def test_the_same_code_does_not_log_in_twice(client, password, roots_device):
    code = current_code(roots_device)
    assert log_in(client, password, code).status_code == 302

    again = log_in(Client(), password, code)

    assert form_errors(again) == {"otp_token": ["token_reused"]}


def test_a_recovery_code_logs_in(client, root, password, roots_device):
    code = recovery.issue(root, timezone.now())[0]

    response = log_in(client, password, code)

    assert response.status_code == 302
    assert opens_the_admin(client)
    assert RecoveryCode.objects.filter(user=root, used_at__isnull=False).count() == 1


def test_a_wrong_code_is_refused_and_counted_in_the_budget(client, password, roots_device):
    response = log_in(client, password, wrong(current_code(roots_device)))

    assert response.status_code == 200
    assert form_errors(response) == {"otp_token": ["invalid_token"]}
    html = response.content.decode()
    assert "This code is not valid." in html
    assert wrong(current_code(roots_device)) not in html  # never sent back, as a password
    assert not logged_in(client)
    assert reload(roots_device).failure_count == 1


def test_the_fifth_wrong_code_locks_and_the_lock_is_shown(client, password, roots_device):
    for _ in range(5):
        log_in(client, password, wrong(current_code(roots_device)))
    assert reload(roots_device).locked_until is not None

    response = log_in(client, password, current_code(roots_device))

    assert form_errors(response) == {"otp_token": ["locked"]}
    assert "Too many wrong codes. Try again later." in response.content.decode()
    assert not logged_in(client)
    assert reload(roots_device).last_used_step == 0  # the right code was not evaluated


def test_a_locked_out_user_is_told_so(client, password, roots_device):
    TOTPDevice.objects.filter(pk=roots_device.pk).update(failure_count=100)

    response = log_in(client, password, current_code(roots_device))

    assert form_errors(response) == {"otp_token": ["locked_out"]}
    assert not logged_in(client)


def test_a_wrong_password_checks_no_code(client, roots_device):
    response = log_in(client, "not the password", current_code(roots_device))

    assert form_errors(response) == {"__all__": ["invalid_login"]}
    device = reload(roots_device)
    assert (device.failure_count, device.last_used_step) == (0, 0)


def test_a_user_who_may_not_use_the_admin_checks_no_code(client, user, password, make_device):
    device = make_device(user, secret=SECRET)  # alice is not staff

    response = log_in(client, password, current_code(device), username="alice")

    assert form_errors(response) == {"__all__": ["invalid_login"]}
    assert reload(device).last_used_step == 0


def test_a_user_without_2fa_logs_in_with_the_password(client, root, password):
    response = log_in(client, password)

    assert response.status_code == 302
    assert opens_the_admin(client)


def test_the_login_gives_the_session_a_new_key(client, root, password, roots_device):
    assert client.login(username="root", password=password)  # a password-only session
    before = client.session.session_key

    assert log_in(client, password, current_code(roots_device)).status_code == 302

    assert client.session.session_key != before
    assert not Session.objects.filter(session_key=before).exists()
    assert opens_the_admin(client)


def test_logging_in_over_another_users_session_keeps_the_mark(
    client, root, other_user, password, roots_device
):
    assert client.login(username="bob", password=password)

    assert log_in(client, password, current_code(roots_device)).status_code == 302

    assert client.session[SESSION_KEY] == str(root.pk)
    assert opens_the_admin(client)


# --- The pages -----------------------------------------------------------------------------------


def test_a_session_logged_in_with_the_password_elsewhere_does_not_open_the_admin(
    client, root, password, roots_device
):
    assert client.login(username="root", password=password)  # e.g. a plain Django login view

    assert not opens_the_admin(client)
    assert client.get(DEVICES).status_code == 302
    page = client.get(LOGIN)
    assert page.status_code == 200  # the login form, with the code field
    assert 'name="otp_token"' in page.content.decode()


def test_a_mark_for_an_earlier_device_does_not_open_the_admin(
    client, root, password, roots_device, make_device
):
    assert log_in(client, password, current_code(roots_device)).status_code == 302
    devices.reset(root)
    make_device(root)  # 2FA turned on again, with a new device

    assert not opens_the_admin(client)


def test_has_permission_needs_the_mark_for_the_current_device(rf, root, roots_device):
    request = rf.get(INDEX)
    request.user = root
    request.session = Client().session
    site = OTPAdminSite()

    assert not site.has_permission(request)
    marks.mark_session(request.session, roots_device, timezone.now())
    assert site.has_permission(request)
    request.session[marks.SESSION_KEY] = {"device": roots_device.pk + 1, "at": 0}
    assert not site.has_permission(request)


# --- The actions on one's own device ---------------------------------------------------------------


def select(client: Client, changelist: str, action: str, *selected: TOTPDevice):
    return client.post(
        changelist,
        {"action": action, "_selected_action": [str(d.pk) for d in selected]},
        follow=True,
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


REFUSED = (
    "Nothing was done: your own device is selected, and this session did not pass your "
    "two-factor authentication. Log in with your code first."
)


def test_a_password_session_cannot_reset_its_own_2fa_on_a_plain_site(client, root, roots_device):
    client.force_login(root)

    response = select(client, PLAIN_DEVICES, "reset_2fa", roots_device)

    assert messages_of(response) == [REFUSED]
    assert reload(roots_device) is not None
    assert not LogEntry.objects.exists()


@pytest.fixture
def locked_staff(django_user_model, password, make_device):
    """A staff user with only the change permission on devices, 2FA on, locked."""
    staff = django_user_model.objects.create_user(
        username="staff", password=password, is_staff=True
    )
    for codename in ("view_totpdevice", "change_totpdevice"):
        staff.user_permissions.add(
            Permission.objects.get(codename=codename, content_type__app_label="drf_totp")
        )
    device = make_device(
        staff, secret=SECRET, failure_count=5, locked_until=timezone.now() + timedelta(minutes=1)
    )
    return staff, device


def test_a_password_session_cannot_unlock_its_own_device_on_a_plain_site(client, locked_staff):
    staff, device = locked_staff
    client.force_login(staff)

    response = select(client, PLAIN_DEVICES, "unlock", device)

    assert messages_of(response) == [REFUSED]
    assert reload(device).failure_count == 5


def test_a_selection_with_ones_own_device_is_refused_as_a_whole(
    client, root, roots_device, user, make_device
):
    other = make_device(user)
    client.force_login(root)

    response = select(client, PLAIN_DEVICES, "reset_2fa", roots_device, other)

    assert messages_of(response) == [REFUSED]
    assert TOTPDevice.objects.count() == 2


def test_a_password_session_still_acts_on_other_users_devices(
    client, root, roots_device, user, make_device
):
    other = make_device(user)
    client.force_login(root)

    response = select(client, PLAIN_DEVICES, "reset_2fa", other)

    assert messages_of(response) == ["Two-factor authentication was reset for 1 user."]
    assert reload(other) is None


@pytest.mark.parametrize("changelist", [DEVICES, PLAIN_DEVICES])
def test_a_session_that_passed_2fa_may_reset_its_own(
    client, root, password, roots_device, changelist
):
    assert log_in(client, password, current_code(roots_device)).status_code == 302

    response = select(client, changelist, "reset_2fa", roots_device)

    assert messages_of(response) == ["Two-factor authentication was reset for 1 user."]
    assert reload(roots_device) is None


@pytest.mark.skipif(django.VERSION < (5, 1), reason="LoginRequiredMiddleware is new in Django 5.1")
def test_the_login_page_stays_open_and_uncached_behind_login_required_middleware(settings):
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]

    response = Client().get(LOGIN)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_the_example_project_uses_the_protected_site():
    path = Path(__file__).resolve().parent.parent / "example" / "example_project" / "settings.py"
    installed = runpy.run_path(str(path))["INSTALLED_APPS"]

    assert "drf_totp.apps.OTPAdminConfig" in installed
    assert "django.contrib.admin" not in installed
