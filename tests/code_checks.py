"""Helpers for the tests of code checking (issue #3): the endpoints that take a code, the codes of
a device at a given step (computed with pyotp, not with the package), and codes that are wrong
in every step of the window.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import pyotp
from django.utils import timezone
from rest_framework.test import APIClient

from drf_totp.models import TOTPDevice

GENERATE = "/auth/otp/generate/"
VERIFY = "/auth/otp/verify/"
STATUS = "/auth/otp/status/"
VALIDATE = "/auth/otp/validate/"
DISABLE = "/auth/otp/disable/"
RECOVERY_CODES = "/auth/otp/recovery-codes/"
LOGIN = "/auth/otp/login/"
LOGIN_VERIFY = "/auth/otp/login/verify/"

# The endpoints of a logged-in user that take a code (verify confirms a pending device; the
# others check the confirmed one).
CODE_ENDPOINTS = {
    "verify": VERIFY,
    "validate": VALIDATE,
    "disable": DISABLE,
    "recovery-codes": RECOVERY_CODES,
}

# A fixed secret (160 bits, base32), so the codes of a test are the same on every run.
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def totp_of(device: TOTPDevice) -> pyotp.TOTP:
    return pyotp.TOTP(
        device.secret,
        digits=device.digits,
        digest=getattr(hashlib, device.algorithm.lower()),
        interval=device.period,
    )


def step_at(device: TOTPDevice, when: datetime | None = None) -> int:
    """The time step of ``when`` (default: now, as the frozen clock says)."""
    return totp_of(device).timecode(when or timezone.now())


def code_for_step(device: TOTPDevice, step: int) -> str:
    return totp_of(device).generate_otp(step)


def current_code(device: TOTPDevice) -> str:
    return code_for_step(device, step_at(device))


def wrong_code(device: TOTPDevice, when: datetime | None = None, *, reach: int = 2) -> str:
    """A well-formed code that is not the code of any step within ``reach`` steps of ``when``."""
    step = step_at(device, when)
    taken = {code_for_step(device, s) for s in range(step - reach, step + reach + 1)}
    candidate = 0
    while f"{candidate:0{device.digits}d}" in taken:
        candidate += 1
    return f"{candidate:0{device.digits}d}"


def post(client, url: str, data=None, **extra):
    """POST ``data`` as JSON (an empty object when there is none)."""
    return client.post(url, {} if data is None else data, format="json", **extra)


def wrong(code: str) -> str:
    """A well-formed code that differs from ``code`` in every digit."""
    return "".join(str((int(digit) + 5) % 10) for digit in code)


def client_with(header: str) -> APIClient:
    """A client that sends ``header`` as its ``Authorization``."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


def post_token(client, url: str, token, **extra):
    return client.post(url, {"token": token, **extra}, format="json")


def start_login(client, user, password: str) -> str:
    """The password step of the two-step login; returns the ticket for the code step."""
    body = {user.USERNAME_FIELD: user.get_username(), "password": password}
    response = client.post(LOGIN, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["ticket"]


def redeem(client, ticket: str, code: str):
    """The code step of the two-step login: ``ticket`` from the password step, and ``code``."""
    return post(client, LOGIN_VERIFY, {"ticket": ticket, "token": code})


def reload(device: TOTPDevice) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(pk=device.pk).first()


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    """The body of an error answer: its status, its ``code``, and the field it names, if any."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert body["detail"]
    if field is not None:
        assert body["errors"][field][0]["code"] == code, body
    return body


def assert_refused(response, status: int, code: str, field: str | None = None) -> None:
    """An error answer with ``status`` and ``code``; ``field``, if given, names that error only."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    if field is not None:
        assert [e["code"] for e in body["errors"][field]] == [code]


def device_for(endpoint: str, owner, make_device, **fields) -> TOTPDevice:
    """The device ``endpoint`` checks codes of: pending for verify, confirmed for the others."""
    fields.setdefault("secret", SECRET)
    return make_device(owner, confirmed=endpoint != "verify", **fields)
