"""Every endpoint needs an authenticated user, acts on that user only, and enforces CSRF under
session authentication."""

from __future__ import annotations

import pytest

from drf_totp.models import TOTPDevice

GENERATE = "/auth/otp/generate/"
VERIFY = "/auth/otp/verify/"
STATUS = "/auth/otp/status/"
VALIDATE = "/auth/otp/validate/"
DISABLE = "/auth/otp/disable/"

ENDPOINTS = [
    ("post", GENERATE),
    ("post", VERIFY),
    ("get", STATUS),
    ("post", VALIDATE),
    ("post", DISABLE),
]
CODE_ENDPOINTS = [VERIFY, VALIDATE, DISABLE]

pytestmark = pytest.mark.usefixtures("clock")


def call(client, method: str, url: str, data: dict | None = None):
    if method == "get":
        return client.get(url)
    return client.post(url, data or {}, format="json")


def body_for(url: str, code: str = "123456") -> dict:
    return {"token": code} if url in CODE_ENDPOINTS else {}


def row(device: TOTPDevice) -> dict:
    """Everything stored for ``device``, to compare before and after a request."""
    return TOTPDevice.objects.filter(pk=device.pk).values().get()


def endpoint_id(case) -> str:
    """A test id, the endpoint's name (``generate``), from a URL or a tuple holding one."""
    parts = [case] if isinstance(case, str) else case
    url = next(part for part in parts if isinstance(part, str) and part.startswith("/"))
    return url.split("/")[-2]


# --- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize("method,url", ENDPOINTS, ids=map(endpoint_id, ENDPOINTS))
def test_unauthenticated_request_is_refused_and_changes_nothing(
    api_client, user, make_device, authenticator, method, url
):
    device = make_device(user)
    before = row(device)

    response = call(api_client, method, url, body_for(url, authenticator(device)))

    assert response.status_code in (401, 403), response.content
    body = response.json()
    assert body["code"] == "not_authenticated"
    assert body["detail"]
    assert row(device) == before
    assert TOTPDevice.objects.count() == 1


@pytest.mark.parametrize("method,url", ENDPOINTS, ids=map(endpoint_id, ENDPOINTS))
def test_unknown_api_token_is_refused(api_client, user, method, url):
    api_client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    response = call(api_client, method, url, body_for(url))

    assert response.status_code in (401, 403), response.content
    assert response.json()["code"] == "authentication_failed"
    assert not TOTPDevice.objects.exists()


# --- only request.user -------------------------------------------------------------------------


@pytest.fixture
def bobs_device(other_user, make_device):
    return make_device(other_user)


def test_generate_creates_a_device_for_the_caller_only(auth_client, user, other_user, make_device):
    bobs_pending = make_device(other_user, confirmed=False)
    before = row(bobs_pending)

    assert auth_client.post(GENERATE, format="json").status_code == 200

    assert row(bobs_pending) == before
    assert TOTPDevice.objects.filter(user=user, is_confirmed=False).count() == 1


def test_verify_does_not_confirm_another_users_pending_device(
    auth_client, other_user, make_device, authenticator
):
    bobs_pending = make_device(other_user, confirmed=False)
    before = row(bobs_pending)

    response = auth_client.post(VERIFY, {"token": authenticator(bobs_pending)}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "no_pending_device"
    assert row(bobs_pending) == before


@pytest.mark.parametrize("url", [VALIDATE, DISABLE], ids=endpoint_id)
def test_code_of_another_users_device_is_not_enabled_for_a_caller_without_one(
    auth_client, bobs_device, authenticator, url
):
    before = row(bobs_device)

    response = auth_client.post(url, {"token": authenticator(bobs_device)}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "not_enabled"
    assert row(bobs_device) == before


@pytest.mark.parametrize("url", [VALIDATE, DISABLE], ids=endpoint_id)
def test_code_of_another_users_device_is_wrong_for_the_callers_device(
    auth_client, user, bobs_device, make_device, authenticator, url
):
    alices_device = make_device(user)
    before = row(bobs_device)

    response = auth_client.post(url, {"token": authenticator(bobs_device)}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"
    assert row(bobs_device) == before
    alices_device.refresh_from_db()
    assert alices_device.failure_count == 1


def test_disable_deletes_the_callers_device_only(
    auth_client, user, bobs_device, make_device, authenticator
):
    alices_device = make_device(user)
    before = row(bobs_device)

    response = auth_client.post(DISABLE, {"token": authenticator(alices_device)}, format="json")

    assert response.status_code == 200, response.content
    assert not TOTPDevice.objects.filter(pk=alices_device.pk).exists()
    assert row(bobs_device) == before


# --- CSRF under session authentication ---------------------------------------------------------

# Each POST endpoint with the device it needs to succeed: none, a pending one, a confirmed one.
CSRF_CASES = [(GENERATE, None), (VERIFY, False), (VALIDATE, True), (DISABLE, True)]


@pytest.fixture
def ready_request(user, make_device, authenticator):
    """``ready_request(url, confirmed)``: set up alice's device; return a body that succeeds."""

    def prepare(url: str, confirmed: bool | None) -> dict:
        if confirmed is None:
            return {}
        return {"token": authenticator(make_device(user, confirmed=confirmed))}

    return prepare


def snapshot() -> list[dict]:
    return list(TOTPDevice.objects.order_by("pk").values())


@pytest.mark.parametrize("url,confirmed", CSRF_CASES, ids=map(endpoint_id, CSRF_CASES))
def test_session_post_without_the_csrf_token_is_forbidden(
    session_client, ready_request, url, confirmed
):
    data = ready_request(url, confirmed)
    before = snapshot()
    session_client.credentials()  # the cookie stays, the header goes: a cross-site request

    response = session_client.post(url, data, format="json")

    assert response.status_code == 403, response.content
    body = response.json()
    assert body["code"] == "permission_denied"
    assert "CSRF" in body["detail"]
    assert snapshot() == before


@pytest.mark.parametrize("url,confirmed", CSRF_CASES, ids=map(endpoint_id, CSRF_CASES))
def test_session_post_with_the_csrf_token_gets_through(
    session_client, ready_request, url, confirmed
):
    response = session_client.post(url, ready_request(url, confirmed), format="json")

    assert response.status_code == 200, response.content
