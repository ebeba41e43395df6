"""Security notifications (issue #15, item 2): one e-mail to the user per event, after the commit,
with the site name, the time and the client IP, never the code, secret, ticket or token used;
off with ``TOTP_NOTIFY = False``, replaced with ``TOTP_NOTIFIER``, and a failing mail server
never fails the request. Rendered in every shipped locale.

The test's transaction holds each request: ``django_capture_on_commit_callbacks(execute=True)``
runs the signals (and so the notifications) when the request's commit would.
"""

from __future__ import annotations

import logging

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from drf_totp import devices, notifications, signals
from drf_totp.models import TOTPDevice
from tests.code_checks import (
    DISABLE,
    GENERATE,
    RECOVERY_CODES,
    VALIDATE,
    VERIFY,
    post,
    wrong,
)

pytestmark = pytest.mark.usefixtures("clock")

IP = "203.0.113.7"
LOCALES = ["en", "de", "es", "fr"]
EVENTS = [signal.name for signal in notifications.EVENTS]

calls: list[tuple[str, object, dict]] = []


def recording_notifier(event, user, context):
    calls.append((event, user, context))


class BrokenBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("the mail server is down")


@pytest.fixture
def committing(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def only_mail(outbox, user) -> tuple[str, str, str]:
    [message] = outbox
    assert message.to == [user.email]
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return message.subject, message.body, html


def assert_tells(parts, *values, hidden=(), site="testserver"):
    for part in parts:
        for value in (site, timezone.now().strftime("%Y-%m-%d %H:%M"), *values):
            assert str(value) in part or part is parts[0], (value, part)
        for secret in hidden:
            assert secret not in part


def test_enabling_sends_one_mail(auth_client, user, authenticator, committing, mailoutbox):
    body = post(auth_client, GENERATE, {}).json()
    code = authenticator(body["otpauth_url"])
    with committing():
        response = post(auth_client, VERIFY, {"token": code}, REMOTE_ADDR=IP)

    assert response.status_code == 200
    parts = only_mail(mailoutbox, user)
    assert "turned on" in parts[0]
    secret = TOTPDevice.objects.get(user=user).secret
    hidden = [code, secret, *response.json()["recovery_codes"]]
    assert_tells(parts, IP, hidden=hidden)


def test_disabling_sends_one_mail(
    auth_client, user, totp_device, authenticator, committing, mailoutbox
):
    code = authenticator(totp_device)
    with committing():
        assert post(auth_client, DISABLE, {"token": code}, REMOTE_ADDR=IP).status_code == 200

    parts = only_mail(mailoutbox, user)
    assert "turned off" in parts[0]
    assert_tells(parts, IP, hidden=[code, totp_device.secret])


def test_an_administrator_reset_says_so(user, totp_device, committing, mailoutbox):
    with committing():
        assert devices.reset(user)

    parts = only_mail(mailoutbox, user)
    assert "turned off" in parts[0]
    assert_tells(parts, "By an administrator", site="drftotp")  # no request: TOTP_ISSUER_NAME


def test_regenerating_recovery_codes_sends_one_mail(
    auth_client, user, totp_device, recovery_codes, authenticator, committing, mailoutbox
):
    code = authenticator(totp_device)
    with committing():
        response = post(auth_client, RECOVERY_CODES, {"token": code}, REMOTE_ADDR=IP)

    assert response.status_code == 200
    parts = only_mail(mailoutbox, user)
    assert "recovery codes" in parts[0].lower()
    new_codes = response.json()["recovery_codes"]
    assert_tells(parts, IP, hidden=[code, totp_device.secret, *recovery_codes, *new_codes])


def test_a_used_recovery_code_sends_one_mail_with_the_count_left(
    auth_client, user, recovery_codes, committing, mailoutbox
):
    with committing():
        response = post(auth_client, VALIDATE, {"token": recovery_codes[0]}, REMOTE_ADDR=IP)

    assert response.status_code == 200
    parts = only_mail(mailoutbox, user)
    assert "recovery code was used" in parts[0]
    assert_tells(parts, IP, "Recovery codes left: 9", hidden=recovery_codes)


def test_wrong_codes_up_to_a_lock_send_one_locked_mail(
    auth_client, user, totp_device, authenticator, committing, mailoutbox, no_throttles, settings
):
    settings.TOTP_FREE_FAILURES = 4
    statuses = []
    for _ in range(7):  # four free, the fifth locks, then refused while locked
        with committing():
            token = wrong(authenticator(totp_device))
            statuses.append(post(auth_client, VALIDATE, {"token": token}).status_code)

    assert statuses == [400] * 5 + [429] * 2
    parts = only_mail(mailoutbox, user)
    assert parts[0] == "Account locked at testserver"
    assert_tells(parts, "127.0.0.1")


def test_the_lockout_sends_one_mail_not_a_locked_one_too(
    auth_client, user, totp_device, authenticator, committing, mailoutbox, no_throttles, settings
):
    settings.TOTP_MAX_FAILURES = 100
    TOTPDevice.objects.filter(pk=totp_device.pk).update(failure_count=99)
    with committing():
        token = wrong(authenticator(totp_device))
        assert post(auth_client, VALIDATE, {"token": token}).status_code == 400

    parts = only_mail(mailoutbox, user)
    assert parts[0] == "Account locked out at testserver"


def test_totp_notify_false_sends_nothing(
    auth_client, user, totp_device, authenticator, committing, mailoutbox, settings
):
    settings.TOTP_NOTIFY = False
    with committing():
        assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200

    assert mailoutbox == []


def test_a_user_without_an_email_gets_nothing(
    auth_client, user, totp_device, authenticator, committing, mailoutbox
):
    type(user).objects.filter(pk=user.pk).update(email="")
    user.email = ""
    with committing():
        assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200

    assert mailoutbox == []


def test_totp_notifier_replaces_the_email(
    auth_client, user, totp_device, authenticator, committing, mailoutbox, settings
):
    settings.TOTP_NOTIFIER = "tests.test_notifications.recording_notifier"
    calls.clear()
    with committing():
        response = post(auth_client, DISABLE, {"token": authenticator(totp_device)}, REMOTE_ADDR=IP)

    assert response.status_code == 200
    assert mailoutbox == []
    [(event, notified, context)] = calls
    assert (event, notified) == ("totp_disabled", user)
    assert (context["ip"], context["site_name"], context["by_admin"]) == (IP, "testserver", False)
    assert context["time"] == timezone.now()


def test_a_failing_mail_server_fails_nothing_and_is_logged(
    auth_client, user, totp_device, authenticator, committing, settings, caplog
):
    settings.EMAIL_BACKEND = "tests.test_notifications.BrokenBackend"
    with caplog.at_level(logging.ERROR, logger="drf_totp"), committing():
        response = post(auth_client, DISABLE, {"token": authenticator(totp_device)})

    assert response.status_code == 200
    assert not TOTPDevice.objects.filter(user=user).exists()
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "drf_totp"
    assert f"totp_disabled for user={user.pk} failed" in record.getMessage()


def test_a_rolled_back_change_sends_nothing(user, totp_device, mailoutbox):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        devices.reset(user)
        raise RuntimeError

    assert mailoutbox == []
    assert TOTPDevice.objects.filter(user=user).exists()


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("event", EVENTS)
def test_every_event_renders_in_every_locale(event, locale, user, mailoutbox, rf):
    request = rf.post("/", HTTP_ACCEPT_LANGUAGE=locale, REMOTE_ADDR=IP)
    extra = {"remaining": 3} if event == "recovery_code_used" else {}
    if event == "totp_locked":
        extra = {"failure_count": 5, "locked_until": timezone.now()}
    notifications.notify(getattr(signals, event), user, request, **extra)

    subject, body, html = only_mail(mailoutbox, user)
    assert "testserver" in subject and IP in body and IP in html
    if locale != "en":  # translated: the English subject differs
        mailoutbox.clear()
        notifications.notify(getattr(signals, event), user, rf.post("/", REMOTE_ADDR=IP), **extra)
        assert mailoutbox[0].subject != subject


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        (None, []),
        ("tests.test_notifications.recording_notifier", []),
        ("tests.test_notifications.no_such_notifier", ["drf_totp.E013"]),
        ("tests.test_notifications.IP", ["drf_totp.E013"]),
        (42, ["drf_totp.E013"]),
    ],
)
def test_an_unusable_notifier_is_a_check_error(value, ids, settings):
    from drf_totp.checks import check_notifier

    settings.TOTP_NOTIFIER = value
    assert [error.id for error in check_notifier()] == ids


def test_nothing_is_sent_before_the_commit(
    auth_client, user, totp_device, authenticator, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert post(auth_client, DISABLE, {"token": authenticator(totp_device)}).status_code == 200

    assert mailoutbox == []
    for callback in callbacks:
        callback()
    assert len(mailoutbox) == 1


def test_the_ip_is_read_as_the_throttles_read_it(
    auth_client, user, totp_device, authenticator, committing, mailoutbox, settings
):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    with committing():
        response = post(
            auth_client,
            DISABLE,
            {"token": authenticator(totp_device)},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"198.51.100.9, {IP}",
        )

    assert response.status_code == 200
    assert_tells(only_mail(mailoutbox, user), IP, hidden=["198.51.100.9", "10.0.0.1"])


def test_the_mail_is_in_the_language_of_the_request(
    auth_client, user, totp_device, authenticator, committing, mailoutbox
):
    with committing():
        response = post(
            auth_client, DISABLE, {"token": authenticator(totp_device)}, HTTP_ACCEPT_LANGUAGE="de"
        )

    assert response.status_code == 200
    subject, body, html = only_mail(mailoutbox, user)
    assert subject == "Zwei-Faktor-Authentifizierung auf testserver ausgeschaltet"
    assert "IP-Adresse: 127.0.0.1" in body and "IP-Adresse: 127.0.0.1" in html


def test_the_plain_text_and_subject_are_not_html_escaped(user, mailoutbox, settings):
    settings.TOTP_ISSUER_NAME = "Smith & Sons"  # the site name without a request or Sites
    notifications.notify(signals.totp_disabled, user)

    subject, body, html = only_mail(mailoutbox, user)
    assert "Smith & Sons" in subject and "Smith & Sons" in body
    assert "Smith &amp; Sons" in html


def test_a_custom_notifier_hears_of_users_without_an_email(user, mailoutbox, settings):
    settings.TOTP_NOTIFIER = "tests.test_notifications.recording_notifier"
    type(user).objects.filter(pk=user.pk).update(email="")
    user.email = ""
    calls.clear()
    notifications.notify(signals.totp_disabled, user)

    assert [(event, notified) for event, notified, _ in calls] == [("totp_disabled", user)]
    assert calls[0][2]["by_admin"] is True


def test_a_host_outside_allowed_hosts_is_named_by_the_issuer_name(user, settings, rf):
    # A project without host validation before the view (no CommonMiddleware, no CSRF check)
    # must still get its mail: the host is only a name in it.
    settings.ALLOWED_HOSTS = ["example.com"]
    settings.TOTP_ISSUER_NAME = "Issuer Name"
    request = rf.get("/", HTTP_HOST="attacker.invalid")

    assert notifications.site_name(request) == "Issuer Name"


def test_a_project_without_a_template_engine_still_gets_its_mails(
    auth_client, user, totp_device, committing, mailoutbox, settings
):
    # An API-only project may configure no template engine at all.
    settings.TEMPLATES = []
    with committing():
        devices.reset(user)

    subject, text, html = only_mail(mailoutbox, user)
    assert "turned off" in subject
    assert "By an administrator." in text
    assert "<html" in html.lower() or "<p" in html.lower()
