"""Issue #11, item 7: error reports never show a password, a code, a ticket or a recovery code.

A request to an endpoint of the package fails with a 500 (the database breaks at a chosen
query) while it holds a known secret. Django reports it the two ways it does in production
(``DEBUG = False``, where its filters are active): the technical 500 page, as text and HTML,
and the mail of ``AdminEmailHandler(include_html=True)``, as text and HTML. None of them may
contain the secret, in any frame's variables, the POST data or elsewhere.
"""

from __future__ import annotations

import logging
import re
import sys

import django
import pytest
from django.core import mail
from django.db import connection
from django.utils.log import AdminEmailHandler
from django.views.debug import (
    ExceptionReporter,
    SafeExceptionReporterFilter,
    get_default_exception_reporter_filter,
    technical_500_response,
)
from rest_framework.test import APIClient

from drf_totp import devices, recovery
from drf_totp.models import TOTPDevice
from tests.code_checks import (
    DISABLE,
    GENERATE,
    LOGIN,
    LOGIN_VERIFY,
    RECOVERY_CODES,
    VALIDATE,
    VERIFY,
    current_code,
    device_for,
    start_login,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock", "unthrottled")]

# Neither whitespace (pretty-printing could split it over two lines) nor a character that HTML
# escapes: found as it is in every form of report.
SECRET_PASSWORD = "Tr0ub4dor-3-horse-battery"

DEVICE = "drf_totp_totpdevice"
CODES = "drf_totp_recoverycode"
USERS = "auth_user"
# The statement that accepts a TOTP code (the reservation before it is an UPDATE of the device too).
ACCEPT = r"SET [`\"]?last_used_step"


class Broken(Exception):
    """The failure injected into a query."""


def breaking(table: str, verb: str):
    """An ``execute_wrapper`` that fails the first ``verb`` statement on ``table``."""
    pattern = re.compile(rf"^\s*{verb}\b.*\b{table}\b", re.IGNORECASE | re.DOTALL)

    def wrapper(execute, sql, params, many, context):
        if pattern.search(sql):
            raise Broken(f"{verb} on {table} failed")
        return execute(sql, params, many, context)

    return wrapper


class Secrets:
    def __init__(self) -> None:
        self.values: set[str] = set()
        self.codes: set[str] = set()

    def add(self, value: str) -> str:
        self.values.add(value)
        if recovery.normalize(value) is not None:
            self.values.add(recovery.normalize(value) or "")
        return value

    def code(self, code: str) -> str:
        self.codes.add(code)
        return code

    def found_in(self, text: str) -> list[str]:
        # A 6-digit code counts only on its own, not inside a longer number or an address.
        found = [c for c in self.codes if re.search(rf"(?<![0-9A-Za-z]){c}(?![0-9A-Za-z])", text)]
        return found + [value for value in self.values if value.lower() in text.lower()]


@pytest.fixture
def secrets(user) -> Secrets:
    found = Secrets()
    user.set_password(found.add(SECRET_PASSWORD))
    user.save()
    return found


@pytest.fixture
def admins(settings):
    if django.VERSION >= (6, 0):
        settings.ADMINS = ["admin@example.com"]
    else:
        settings.ADMINS = [("Admin", "admin@example.com")]


def reports_of(record: logging.LogRecord) -> dict[str, str]:
    """Every form in which Django reports the failure of ``record``'s request."""
    request, exc_info = record.request, record.exc_info  # type: ignore[attr-defined]
    assert exc_info is not None and isinstance(exc_info[1], Broken), "the injected failure"
    reporter = ExceptionReporter(request, *exc_info)
    mail.outbox.clear()
    AdminEmailHandler(include_html=True).emit(record)
    [message] = mail.outbox
    [(html_mail, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return {
        "technical 500 page": technical_500_response(request, *exc_info).content.decode(),
        "technical 500 text": reporter.get_traceback_text(),
        "technical 500 html": reporter.get_traceback_html(),
        "mail subject": message.subject,
        "mail text": message.body,
        "mail html": str(html_mail),
    }


def failing(
    client: APIClient, url: str, body: dict, table: str, verb: str, caplog, *, form: bool = False
) -> dict:
    """POST ``body`` (JSON, or a form) to ``url`` while the database fails ``verb`` on ``table``:
    the reports."""
    caplog.set_level(logging.ERROR, logger="django.request")
    client.raise_request_exception = False
    with connection.execute_wrapper(breaking(table, verb)):
        response = client.post(url, body) if form else client.post(url, body, format="json")
    assert response.status_code == 500, response.content
    [record] = [r for r in caplog.records if r.name == "django.request"]
    return reports_of(record)


def assert_no_secret(reports: dict[str, str], secrets: Secrets) -> None:
    assert secrets.values or secrets.codes
    for name, text in reports.items():
        assert secrets.found_in(text) == [], name


@pytest.fixture
def alices_device(user, make_device):
    return device_for("validate", user, make_device)


# --- The two-step login --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "verb"),
    [
        (USERS, "SELECT"),  # in the password check (Django's authentication backend)
        (DEVICE, "SELECT"),  # after it
    ],
)
def test_a_failing_password_step_reports_no_password(
    api_client, user, secrets, alices_device, admins, caplog, table, verb
):
    body = {"username": "alice", "password": SECRET_PASSWORD}

    reports = failing(api_client, LOGIN, body, table, verb, caplog)

    # The report is there, with its traceback through the password step.
    assert "drf_totp/login.py" in reports["technical 500 text"]
    assert_no_secret(reports, secrets)


@pytest.mark.parametrize(
    ("kind", "table", "verb"),
    [
        ("totp", USERS, "SELECT"),  # reading the ticket's user
        ("totp", DEVICE, "UPDATE"),  # accepting the code
        ("recovery", CODES, "UPDATE"),  # using the recovery code
    ],
)
def test_a_failing_code_step_reports_no_ticket_and_no_code(
    api_client, user, secrets, alices_device, admins, caplog, kind, table, verb
):
    ticket = secrets.add(start_login(api_client, user, SECRET_PASSWORD))
    if kind == "totp":
        code = secrets.code(current_code(alices_device))
    else:
        code = secrets.add(recovery.issue(user, alices_device.created_at)[3])

    reports = failing(
        api_client, LOGIN_VERIFY, {"ticket": ticket, "token": code}, table, verb, caplog
    )

    assert_no_secret(reports, secrets)


@pytest.mark.parametrize(
    ("kind", "table", "verb"),
    [("totp", DEVICE, "UPDATE"), ("totp", ACCEPT, "UPDATE"), ("recovery", CODES, "UPDATE")],
)
def test_a_failing_validate_reports_no_code(
    auth_client, user, secrets, alices_device, admins, caplog, kind, table, verb
):
    if kind == "totp":
        code = secrets.code(current_code(alices_device))
    else:
        code = secrets.add(recovery.issue(user, alices_device.created_at)[0])

    reports = failing(auth_client, VALIDATE, {"token": code}, table, verb, caplog)

    assert_no_secret(reports, secrets)


def test_a_failing_disable_reports_no_password_and_no_code(
    auth_client, user, secrets, alices_device, admins, caplog, settings
):
    settings.TOTP_DISABLE_REQUIRES_PASSWORD = True
    body = {"token": secrets.code(current_code(alices_device)), "password": SECRET_PASSWORD}

    reports = failing(auth_client, DISABLE, body, DEVICE, "DELETE", caplog)

    assert_no_secret(reports, secrets)


def test_failing_new_recovery_codes_report_neither_the_code_nor_the_new_codes(
    auth_client, user, secrets, alices_device, admins, caplog, monkeypatch
):
    issued: list[str] = []
    real_generate = recovery.generate

    def generate():
        code, shown = real_generate()
        issued.extend([secrets.add(shown)])
        return code, shown

    monkeypatch.setattr(recovery, "generate", generate)
    code = secrets.code(current_code(alices_device))

    reports = failing(auth_client, RECOVERY_CODES, {"token": code}, CODES, "INSERT", caplog)

    assert issued, "the new codes were made before the failure"
    assert_no_secret(reports, secrets)


def test_a_failing_enrollment_reports_no_secret(auth_client, user, secrets, admins, caplog):
    reports = failing(auth_client, GENERATE, {}, DEVICE, "INSERT", caplog)

    # The secret never left the server; whatever was made is in no report. Its random bits are
    # unknown to the test, so look for any base32 string of a secret's length instead.
    for name, text in reports.items():
        assert not re.search(r"(?<![A-Z2-7])[A-Z2-7]{32}(?![A-Z2-7])", text), name
    assert not TOTPDevice.objects.exists()


def test_failing_confirmation_reports_no_code(
    auth_client, user, secrets, make_device, admins, caplog
):
    pending = device_for("verify", user, make_device)
    code = secrets.code(current_code(pending))

    reports = failing(auth_client, VERIFY, {"token": code}, CODES, "INSERT", caplog)

    assert_no_secret(reports, secrets)


@pytest.mark.parametrize(
    ("table", "verb"),
    [
        (USERS, "SELECT"),  # in the password check (Django's authentication backend)
        (DEVICE, "UPDATE"),  # accepting the code
    ],
)
def test_a_failing_admin_login_reports_no_password_and_no_code(
    user, secrets, alices_device, admins, caplog, table, verb
):
    user.is_staff = True
    user.save()
    code = secrets.code(current_code(alices_device))
    body = {"username": "alice", "password": SECRET_PASSWORD, "otp_token": code}

    reports = failing(APIClient(), "/admin/login/", body, table, verb, caplog, form=True)

    assert "********************" in reports["technical 500 html"]  # the POST data, hidden
    assert_no_secret(reports, secrets)


# --- The domain, called outside a request -----------------------------------------------------


class Held:
    """A value kept out of its holder's own variables (its repr does not show it)."""

    def __init__(self, value: str) -> None:
        self.value = value


@pytest.mark.parametrize("kind", ["totp", "recovery"])
def test_a_failing_code_check_outside_a_request_reports_no_code(
    user, secrets, alices_device, settings, kind
):
    """An integrator's task calls the domain; Django's reporter then has no request to mark.

    The functions of the package that hold the code hide their own variables.
    """
    if kind == "totp":
        code, table = Held(secrets.code(current_code(alices_device))), DEVICE
    else:
        code = Held(secrets.add(recovery.issue(user, alices_device.created_at)[0]))
        table = CODES

    with connection.execute_wrapper(breaking(table, "UPDATE")), pytest.raises(Broken):
        try:
            devices.authenticate(user, code.value)
        except Broken:
            exc_info = sys.exc_info()
            raise

    reporter = ExceptionReporter(None, *exc_info, is_email=True)
    reports = {"text": reporter.get_traceback_text(), "html": reporter.get_traceback_html()}
    assert "drf_totp/verification.py" in reports["text"]
    assert_no_secret(reports, secrets)


class ProjectFilter(SafeExceptionReporterFilter):
    """A project's own filter (``DEFAULT_EXCEPTION_REPORTER_FILTER``)."""

    cleansed_substitute = "[removed by the project]"


@pytest.fixture
def project_filter(settings):
    # Django keeps the default filter once made: forget it on both sides of the test.
    get_default_exception_reporter_filter.cache_clear()
    settings.DEFAULT_EXCEPTION_REPORTER_FILTER = f"{__name__}.ProjectFilter"
    yield
    get_default_exception_reporter_filter.cache_clear()


@pytest.mark.usefixtures("project_filter")
def test_the_projects_own_filter_still_applies(
    api_client, user, secrets, alices_device, admins, caplog
):
    body = {"username": "alice", "password": SECRET_PASSWORD}

    reports = failing(api_client, LOGIN, body, USERS, "SELECT", caplog)

    assert ProjectFilter.cleansed_substitute in reports["technical 500 html"]
    assert_no_secret(reports, secrets)
