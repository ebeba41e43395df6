"""Fuzzing the API against its own OpenAPI schema (schemathesis, in-process through WSGI).

Generated requests — bodies that fit the schema, bodies that break it, and bodies carrying the
values a fuzzer cannot guess (the current code, a recovery code, a login ticket, the password) —
from a user with a confirmed device, authenticated with a DRF token, never get a 5xx, a status
the schema does not list, or a body that breaks the schema. Bounded (30 examples per
operation) and derandomized, so CI sends the same requests every run.

Below the fuzzer, one by one: the responses it cannot reach from that state (enrollment, a
lock, throttling, each credential kind), and strings it never generates (a lone surrogate, NUL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("drf_spectacular")

from django.core.signals import request_finished, request_started  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from django.utils import timezone  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.test import Client  # noqa: E402

from drf_totp import authentication, recovery, tickets  # noqa: E402
from drf_totp.models import LoginToken, TOTPDevice  # noqa: E402
from drf_totp.throttling import DEFAULT_RATES  # noqa: E402
from tests.code_checks import wrong_code  # noqa: E402
from tests.test_openapi import generated_schema  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
MAX_EXAMPLES = 30  # per operation

schema = schemathesis.openapi.from_dict(generated_schema())
OPERATIONS = sorted(result.ok().label for result in schema.get_all_operations())


@pytest.fixture
def wsgi_app():
    """Django's WSGI application, sharing the test's database connection and transaction.

    Django closes the connection at the end of every request; the test client stops that,
    and so does this fixture, or the test's transaction would be lost after one request.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def throttles_out_of_reach(settings):
    """Every drf_totp throttle at a rate no test reaches: generated requests get to the views
    instead of a 429, and the throttles still run (the login throttle reads the body)."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(DEFAULT_RATES, "100000/min"),
    }


@pytest.fixture
def token_header(user) -> dict[str, str]:
    """alice's drf-totp login token (TokenAuthentication, so no CSRF and no session)."""
    key = authentication.new_key()
    LoginToken.objects.create(
        user=user, digest=authentication.key_digest(key), created_at=timezone.now()
    )
    return {"Authorization": f"Token {key}"}


# --- Values a fuzzer cannot guess -----------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """A placeholder in a generated body, replaced by a real value just before the request."""

    name: str


KNOWN_VALUES = {
    "token": ["current code", "wrong code", "recovery code", "used recovery code"],
    "ticket": ["ticket"],
    "username": ["username"],
    "password": ["password"],
}


@st.composite
def with_known_values(draw: Any, cases: Any) -> Any:
    """A valid generated case, some of whose fields are replaced by ``Known`` placeholders."""
    case = draw(cases)
    if isinstance(case.body, dict):
        for field in sorted(set(case.body) & set(KNOWN_VALUES)):
            if draw(st.booleans()):
                case.body[field] = Known(draw(st.sampled_from(KNOWN_VALUES[field])))
    return case


class Account:
    """alice's 2FA state during a fuzz run: re-created when a request ended it (a successful
    disable), unlocked before every example, and the source of the ``Known`` values."""

    def __init__(self, user: Any, password: str, make_device: Any, authenticator: Any) -> None:
        self.user = user
        self.password = password
        self.make_device = make_device
        self.authenticator = authenticator
        self.codes: list[str] = []

    def prepare(self) -> None:
        device = TOTPDevice.objects.filter(user=self.user, is_confirmed=True).first()
        if device is None:
            TOTPDevice.objects.filter(user=self.user).delete()
            device = self.make_device(self.user)
            self.codes = recovery.issue(self.user, timezone.now())
        # Unlocked, so that codes keep reaching the checks (locks are tested below).
        TOTPDevice.objects.filter(pk=device.pk).update(failure_count=0, locked_until=None)
        self.device = TOTPDevice.objects.get(pk=device.pk)

    def value(self, name: str) -> str:
        if name == "current code":
            return self.authenticator(self.device)
        if name == "wrong code":
            return wrong_code(self.device)
        if name == "recovery code":
            unused = recovery.unused(self.user.pk).count()
            return self.codes[-unused] if unused else self.codes[0]
        if name == "used recovery code":
            return self.codes[0]
        if name == "ticket":
            return tickets.issue(self.user, self.device)
        if name == "username":
            return self.user.get_username()
        assert name == "password"
        return self.password

    def fill(self, case: Any) -> None:
        if isinstance(case.body, dict):
            for field, value in case.body.items():
                if isinstance(value, Known):
                    case.body[field] = self.value(value.name)

    def learn(self, response: Any) -> None:
        """Keep the recovery codes a successful request handed out."""
        if response.status_code == 200 and response.content:
            body = json.loads(response.content)
            if isinstance(body, dict) and "recovery_codes" in body:
                self.codes = body["recovery_codes"]


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_error_and_no_undocumented_response(
    label: str,
    wsgi_app,
    throttles_out_of_reach,
    user,
    password,
    make_device,
    authenticator,
    token_header,
):
    operation = schema.find_operation_by_label(label)
    valid = operation.as_strategy(GenerationMode.POSITIVE)
    cases = st.one_of(
        valid, operation.as_strategy(GenerationMode.NEGATIVE), with_known_values(valid)
    )
    account = Account(user, password, make_device, authenticator)

    @given(case=cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        account.prepare()
        account.fill(case)
        response = case.call_and_validate(app=wsgi_app, headers=token_header, checks=CHECKS)
        account.learn(response)

    fuzz()


# --- The responses the fuzzer cannot reach from its state, one by one ------------------------


def send(
    app: Any,
    label: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Send ``body`` to the operation ``label``, check the response against the schema, and
    return it with its JSON body."""
    operation = schema.find_operation_by_label(label)
    method, path = label.split(" ", 1)
    data = json.dumps(body) if content_type == "application/json" and body is not None else body
    response = Client(app).open(
        path, method=method, data=data, content_type=content_type, headers=headers or {}
    )
    case = operation.Case(body=body) if isinstance(body, dict) else operation.Case()
    case.validate_response(response, checks=CHECKS)
    return response, json.loads(response.get_data())


GENERATE = "POST /auth/otp/generate/"
VERIFY = "POST /auth/otp/verify/"
STATUS = "GET /auth/otp/status/"
VALIDATE = "POST /auth/otp/validate/"
DISABLE = "POST /auth/otp/disable/"
RECOVERY_CODES = "POST /auth/otp/recovery-codes/"
LOGIN = "POST /auth/otp/login/"
LOGIN_VERIFY = "POST /auth/otp/login/verify/"


def test_enrollment_responses_conform(wsgi_app, unthrottled, user, token_header, authenticator):
    response, body = send(wsgi_app, VERIFY, {"token": "123456"}, headers=token_header)
    assert (response.status_code, body["code"]) == (409, "no_pending_device")
    response, body = send(wsgi_app, VALIDATE, {"token": "123456"}, headers=token_header)
    assert (response.status_code, body["code"]) == (409, "not_enabled")
    response, body = send(wsgi_app, STATUS, headers=token_header)
    assert (response.status_code, body["enabled"]) == (200, False)

    response, body = send(wsgi_app, GENERATE, headers=token_header)
    assert response.status_code == 200
    response, body = send(wsgi_app, GENERATE, {}, headers=token_header)
    assert response.status_code == 200
    code = authenticator(body["otpauth_url"])
    response, body = send(wsgi_app, STATUS, headers=token_header)
    assert (response.status_code, body["pending"]) == (200, True)
    response, body = send(wsgi_app, VERIFY, {"token": code}, headers=token_header)
    assert (response.status_code, body["enabled"], len(body["recovery_codes"])) == (200, True, 10)
    response, body = send(wsgi_app, STATUS, headers=token_header)
    assert (response.status_code, body["enabled"]) == (200, True)


def test_code_endpoint_successes_conform(
    wsgi_app, unthrottled, user, make_device, authenticator, token_header, clock
):
    device = make_device(user)
    codes = recovery.issue(user, timezone.now())
    response, body = send(
        wsgi_app, VALIDATE, {"token": authenticator(device)}, headers=token_header
    )
    assert (response.status_code, body["enabled"]) == (200, True)
    response, body = send(wsgi_app, VALIDATE, {"token": codes[0]}, headers=token_header)
    assert response.status_code == 200
    response, body = send(wsgi_app, VALIDATE, {"token": codes[0]}, headers=token_header)
    assert (response.status_code, body["code"]) == (400, "token_reused")
    clock.shift(30)
    response, body = send(
        wsgi_app, RECOVERY_CODES, {"token": authenticator(device)}, headers=token_header
    )
    assert (response.status_code, len(body["recovery_codes"])) == (200, 10)
    clock.shift(30)
    response, body = send(wsgi_app, DISABLE, {"token": authenticator(device)}, headers=token_header)
    assert (response.status_code, body["enabled"]) == (200, False)


def test_lock_responses_conform(wsgi_app, unthrottled, user, make_device, token_header):
    device = make_device(user)
    wrong = wrong_code(device)
    statuses = [
        send(wsgi_app, VALIDATE, {"token": wrong}, headers=token_header)[0].status_code
        for _ in range(6)
    ]
    assert statuses == [400, 400, 400, 400, 400, 429]
    response, body = send(wsgi_app, VALIDATE, {"token": wrong}, headers=token_header)
    assert (response.status_code, body["code"]) == (429, "locked")
    assert body["retry_after"] >= 1 and body["locked_until"]
    response, body = send(wsgi_app, STATUS, headers=token_header)
    assert body["locked_until"] is not None

    TOTPDevice.objects.filter(pk=device.pk).update(failure_count=100, locked_until=None)
    response, body = send(wsgi_app, VALIDATE, {"token": wrong}, headers=token_header)
    assert (response.status_code, body["code"]) == (403, "locked_out")
    response, body = send(wsgi_app, STATUS, headers=token_header)
    assert body["locked_out"] is True


def test_refused_requests_conform(wsgi_app, user):
    response, body = send(wsgi_app, VALIDATE, {"token": "123456"})
    assert (response.status_code, body["code"]) == (403, "not_authenticated")
    response, body = send(wsgi_app, STATUS)
    assert (response.status_code, body["code"]) == (403, "not_authenticated")
    response, body = send(
        wsgi_app, LOGIN, "username=alice", content_type="application/x-www-form-urlencoded"
    )
    assert (response.status_code, body["code"]) == (415, "unsupported_media_type")


@pytest.mark.usefixtures("counting_cache")
def test_throttled_requests_conform(wsgi_app, user, token_header, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**dict.fromkeys(DEFAULT_RATES), "totp_user": "1/min"},
    }
    assert send(wsgi_app, VALIDATE, {"token": "x"}, headers=token_header)[0].status_code == 409
    response, body = send(wsgi_app, VALIDATE, {"token": "x"}, headers=token_header)
    assert (response.status_code, body["code"]) == (429, "throttled")
    assert int(response.headers["Retry-After"]) >= 1


# Strings schemathesis does not generate: a lone surrogate (valid JSON, "\\ud800", but not
# Unicode text) and NUL (which PostgreSQL refuses in text). Sent with the throttles at their
# default rates, since the login throttle reads the body.
HOSTILE = {"surrogate": "\ud800", "nul": "a\x00b"}
PLAIN = {"token": "123456", "ticket": "not-a-ticket", "username": "alice", "password": "secret"}


def body_fields(label: str) -> list[str]:
    """The properties of the operation's JSON request body."""
    method, path = label.split(" ", 1)
    raw = schema.raw_schema
    body = raw["paths"][path][method.lower()].get("requestBody")
    if body is None:
        return []
    ref = body["content"]["application/json"]["schema"]["$ref"]
    return list(raw["components"]["schemas"][ref.rsplit("/", 1)[1]].get("properties", {}))


HOSTILE_CASES = [
    pytest.param(label, field, kind, id=f"{label} {field} {kind}")
    for label in OPERATIONS
    for field in body_fields(label)
    for kind in HOSTILE
]


@pytest.mark.parametrize(("label", "field", "kind"), HOSTILE_CASES)
def test_strings_that_are_not_text_get_a_documented_answer(
    wsgi_app, user, make_device, token_header, label, field, kind
):
    make_device(user)
    body = {name: PLAIN[name] for name in body_fields(label)}
    body[field] = HOSTILE[kind]
    response, data = send(wsgi_app, label, body, headers=token_header)
    assert response.status_code in (400, 409), data


@pytest.mark.parametrize("credential", ["session", "authtoken", "simplejwt", "knox"])
@pytest.mark.parametrize("with_2fa", [False, True], ids=["without_2fa", "with_2fa"])
def test_every_credential_conforms(
    wsgi_app,
    unthrottled,
    user,
    password,
    make_device,
    authenticator,
    settings,
    credential,
    with_2fa,
):
    settings.TOTP_LOGIN_CREDENTIAL = credential
    device = make_device(user) if with_2fa else None
    response, body = send(wsgi_app, LOGIN, {"username": user.get_username(), "password": password})
    assert response.status_code == 200
    if device is not None:
        assert body["mfa_required"] is True
        login = {"ticket": body["ticket"], "token": authenticator(device)}
        response, body = send(wsgi_app, LOGIN_VERIFY, login)
        assert response.status_code == 200
    assert "mfa_required" not in body
