"""Secrets are safe at rest: only a Fernet token of the secret is stored, under a key derived
from SECRET_KEY (or an explicit TOTP_ENCRYPTION_KEYS key), and keys can be rotated."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from drf_totp.exceptions import SecretUnavailable
from drf_totp.fields import Unreadable
from drf_totp.models import TOTPDevice

GENERATE = "/auth/otp/generate/"
VERIFY = "/auth/otp/verify/"
VALIDATE = "/auth/otp/validate/"

NEW_SECRET_KEY = "drf-totp-tests-the-next-secret-key-9876543210-zyxwvutsrqponmlkjihgfedcba"

pytestmark = pytest.mark.usefixtures("clock")


def key_from_secret_key(secret_key: str) -> bytes:
    """The Fernet key the package must derive from a SECRET_KEY (HKDF-SHA256, fixed info).

    Spelled out here rather than imported: a change of derivation would make every stored
    secret unreadable, so it must show up as a failing test.
    """
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"drf_totp secret encryption v1"
    ).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


def stored_secret(device_pk: int) -> str:
    """The secret column of a device exactly as the database holds it."""
    qn = connection.ops.quote_name
    table = TOTPDevice._meta.db_table
    column = TOTPDevice._meta.get_field("secret").column
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn(column)} FROM {qn(table)} WHERE {qn('id')} = %s", [device_pk])
        return cursor.fetchone()[0]


def every_cell() -> Iterator[tuple[str, str, object]]:
    """``(table, column, value)`` for every value in every table of the database."""
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {qn(table)}")
            columns = [column[0] for column in cursor.description]
            for values in cursor.fetchall():
                for column, value in zip(columns, values, strict=True):
                    yield table, column, value


def forms_of(secret: str) -> tuple[list[str], list[bytes]]:
    """Texts and byte strings that would give the secret away if found in a column."""
    raw = base64.b32decode(secret)
    texts = [
        secret,
        raw.hex(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
    ]
    return texts, [raw]


def holds(value: object, secret: str) -> bool:
    texts, raws = forms_of(secret)
    if isinstance(value, memoryview):
        value = bytes(value)
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
    text = data.decode("latin-1").lower()
    return any(form.lower() in text for form in texts) or any(raw in data for raw in raws)


@pytest.fixture
def enroll(user, authenticator):
    """``enroll(client)``: generate and verify over HTTP; returns the device and its URL."""

    def run(client) -> tuple[TOTPDevice, str]:
        body = client.post(GENERATE, format="json").json()
        response = client.post(VERIFY, {"token": authenticator(body["otpauth_url"])}, format="json")
        assert response.status_code == 200, response.content
        device = TOTPDevice.objects.get(user=user)
        assert device.secret == body["secret"]
        return device, body["otpauth_url"]

    return run


# --- nothing in the database -------------------------------------------------------------------


def test_no_column_of_any_table_holds_the_secret(
    session_client, user, enroll, authenticator, clock
):
    device, url = enroll(session_client)
    clock.shift(30)
    # Logging in with a code also writes the session's 2FA mark.
    response = session_client.post(VALIDATE, {"token": authenticator(url)}, format="json")
    assert response.status_code == 200, response.content

    cells = list(every_cell())

    leaks = [(table, column) for table, column, value in cells if holds(value, device.secret)]
    assert leaks == []
    # The scan does see the data: alice's email, and the secret's column (as a Fernet token).
    assert any(value == user.email for _, _, value in cells)
    assert (TOTPDevice._meta.db_table, "secret", stored_secret(device.pk)) in cells


def test_the_scan_would_spot_a_plaintext_secret(user, make_device):
    """The leak detector of the test above finds each form of a secret it looks for."""
    device = make_device(user)
    secret = device.secret
    raw = base64.b32decode(secret)
    leaks = [
        f"x{secret}y",
        secret.lower(),
        raw.hex().upper(),
        base64.b64encode(raw).decode(),
        b"x" + raw,
        memoryview(raw),
    ]

    for leak in leaks:
        assert holds(leak, secret), leak
    assert not holds(stored_secret(device.pk), secret)


def test_dumpdata_does_not_reveal_the_secret(auth_client, enroll):
    device, _url = enroll(auth_client)
    out = StringIO()

    call_command("dumpdata", "drf_totp", stdout=out)

    dumped = out.getvalue()
    assert '"drf_totp.totpdevice"' in dumped
    assert device.secret not in dumped
    assert device.secret.lower() not in dumped.lower()


def test_dumpdata_then_loaddata_restores_a_working_device(
    auth_client, user, enroll, authenticator, clock, tmp_path
):
    device, url = enroll(auth_client)
    fixture = tmp_path / "devices.json"
    call_command("dumpdata", "drf_totp", output=str(fixture))
    TOTPDevice.objects.all().delete()

    call_command("loaddata", str(fixture))

    restored = TOTPDevice.objects.get(user=user)
    assert restored.secret == device.secret
    clock.shift(30)
    response = auth_client.post(VALIDATE, {"token": authenticator(url)}, format="json")
    assert response.status_code == 200, response.content
    dumped = json.loads(fixture.read_text())
    assert [entry["model"] for entry in dumped].count("drf_totp.totpdevice") == 1


# --- keys --------------------------------------------------------------------------------------


def test_stored_secret_is_a_fernet_token_under_a_key_derived_from_secret_key(auth_client, enroll):
    device, _url = enroll(auth_client)

    token = stored_secret(device.pk).encode()

    assert Fernet(key_from_secret_key(settings.SECRET_KEY)).decrypt(token).decode() == device.secret


def test_stored_secret_does_not_open_with_a_key_from_another_secret_key(auth_client, enroll):
    device, _url = enroll(auth_client)

    with pytest.raises(InvalidToken):
        Fernet(key_from_secret_key(NEW_SECRET_KEY)).decrypt(stored_secret(device.pk).encode())


def test_device_keeps_working_when_secret_key_rotates_with_the_old_one_as_fallback(
    auth_client, enroll, authenticator, clock
):
    _device, url = enroll(auth_client)
    clock.shift(30)

    with override_settings(SECRET_KEY=NEW_SECRET_KEY, SECRET_KEY_FALLBACKS=[settings.SECRET_KEY]):
        response = auth_client.post(VALIDATE, {"token": authenticator(url)}, format="json")

    assert response.status_code == 200, response.content


def test_secret_cannot_be_read_once_the_old_secret_key_is_gone(auth_client, enroll):
    device, _url = enroll(auth_client)

    with override_settings(SECRET_KEY=NEW_SECRET_KEY, SECRET_KEY_FALLBACKS=[]):
        # The row still loads (its other columns are fine); its secret does not.
        loaded = TOTPDevice.objects.get(pk=device.pk)
        with pytest.raises(SecretUnavailable):
            loaded.secret  # noqa: B018
        [value] = TOTPDevice.objects.filter(pk=device.pk).values_list("secret", flat=True)

    assert isinstance(value, Unreadable)
    assert "SECRET_KEY_FALLBACKS" in value.cause


def test_new_secrets_are_encrypted_with_the_configured_key(auth_client, enroll):
    key = Fernet.generate_key()

    with override_settings(TOTP_ENCRYPTION_KEYS=[key.decode()]):
        device, _url = enroll(auth_client)

    token = stored_secret(device.pk).encode()
    assert Fernet(key).decrypt(token).decode() == device.secret
    with pytest.raises(InvalidToken):
        Fernet(key_from_secret_key(settings.SECRET_KEY)).decrypt(token)


def test_secrets_stored_before_keys_were_configured_still_work(
    auth_client, enroll, authenticator, clock
):
    device, url = enroll(auth_client)
    clock.shift(30)

    with override_settings(TOTP_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        assert TOTPDevice.objects.get(pk=device.pk).secret == device.secret
        response = auth_client.post(VALIDATE, {"token": authenticator(url)}, format="json")

    assert response.status_code == 200, response.content


def test_rotate_keys_re_encrypts_every_secret_under_the_newest_key(
    user, other_user, django_user_model, make_device
):
    older, newest = Fernet.generate_key(), Fernet.generate_key()
    carol = django_user_model.objects.create_user(username="carol", email="carol@example.com")
    devices = [make_device(user), make_device(other_user, confirmed=False)]
    with override_settings(TOTP_ENCRYPTION_KEYS=[older.decode()]):
        devices.append(make_device(carol))
        before = {d.pk: TOTPDevice.objects.filter(pk=d.pk).values().get() for d in devices}
    out = StringIO()

    with override_settings(TOTP_ENCRYPTION_KEYS=[newest.decode(), older.decode()]):
        call_command("totp_rotate_keys", stdout=out)
        after = {d.pk: TOTPDevice.objects.filter(pk=d.pk).values().get() for d in devices}

    for device in devices:
        assert Fernet(newest).decrypt(stored_secret(device.pk).encode()).decode() == device.secret
    assert after == before  # every column, the secret included, reads back as before
    assert re.search(r"\b3\b", out.getvalue())


def test_after_rotation_the_old_keys_can_be_dropped(user, make_device, authenticator, auth_client):
    device = make_device(user)
    newest = Fernet.generate_key().decode()

    with override_settings(TOTP_ENCRYPTION_KEYS=[newest]):
        call_command("totp_rotate_keys", stdout=StringIO())
    # Only the new key, and a SECRET_KEY the secret was never encrypted with.
    with override_settings(
        TOTP_ENCRYPTION_KEYS=[newest], SECRET_KEY=NEW_SECRET_KEY, SECRET_KEY_FALLBACKS=[]
    ):
        assert TOTPDevice.objects.get(pk=device.pk).secret == device.secret
        response = auth_client.post(VALIDATE, {"token": authenticator(device)}, format="json")

    assert response.status_code == 200, response.content
