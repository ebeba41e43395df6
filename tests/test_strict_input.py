"""Issue #3, item 5: strict input. A token is a JSON string of exactly the device's number of ASCII
digits (or "123 456": one ASCII space between the halves). Anything else gets a 400 with a code (a
field error where there is a field; 415 for a body that is not JSON), never a 500, and nothing is
written: the failure counter does not move and no code is consumed.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from drf_totp.models import TOTPDevice
from tests.code_checks import (
    CODE_ENDPOINTS,
    GENERATE,
    LOGIN,
    LOGIN_VERIFY,
    SECRET,
    assert_error,
    code_for_step,
    current_code,
    device_for,
    post_token,
    reload,
    start_login,
    step_at,
)

pytestmark = pytest.mark.usefixtures("clock", "no_throttles")

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE")

# A JSON value sent as "token" -> the code of the 400 on the token field.
BAD_TOKENS = {
    "full-width digits": ("１２３４５６", "invalid_format"),
    "Arabic-Indic digits": ("٠١٢٣٤٥", "invalid_format"),
    "Extended Arabic-Indic digits": ("۱۲۳۴۵۶", "invalid_format"),
    "Devanagari digits": ("१२३४५६", "invalid_format"),
    "mixed ASCII and full-width": ("12345６", "invalid_format"),
    "plus sign": ("+123456", "invalid_format"),
    "plus sign, five digits": ("+12345", "invalid_format"),
    "minus sign": ("-12345", "invalid_format"),
    "underscore": ("123_456", "invalid_format"),
    "trailing newline": ("123456\n", "invalid_format"),
    "leading newline": ("\n123456", "invalid_format"),
    "leading space": (" 123456", "invalid_format"),
    "trailing space": ("123456 ", "invalid_format"),
    "two spaces between the halves": ("123  456", "invalid_format"),
    "tab between the halves": ("123\t456", "invalid_format"),
    "no-break space between the halves": ("123\u00a0456", "invalid_format"),
    "space off the middle": ("12 3456", "invalid_format"),
    "space between every digit": ("1 2 3 4 5 6", "invalid_format"),
    "five digits": ("12345", "invalid_format"),
    "seven digits": ("1234567", "invalid_format"),
    "eight digits": ("12345678", "invalid_format"),
    "exponent": ("1e5", "invalid_format"),
    "hexadecimal": ("0x1E240", "invalid_format"),
    "letters": ("abcdef", "invalid_format"),
    "NUL inside": ("123\x00456", "invalid_format"),
    "empty string": ("", "blank"),
    "100 kB string": ("1" * 100_000, "max_length"),
    "number": (123456, "invalid"),
    "float": (123456.0, "invalid"),
    "boolean": (True, "invalid"),
    "null": (None, "null"),
    "list": (["123456"], "invalid"),
    "object": ({"code": "123456"}, "invalid"),
}

# A raw request body -> (its content type, status, code, the field the error names or None).
JSON = "application/json"
BAD_BODIES = {
    "malformed JSON": ('{"token": "123456"', JSON, 400, "parse_error", None),
    "trailing garbage": ('{"token": "123456"} x', JSON, 400, "parse_error", None),
    "NaN": ('{"token": NaN}', JSON, 400, "parse_error", None),
    "Infinity": ('{"token": Infinity}', JSON, 400, "parse_error", None),
    "invalid UTF-8": (b'{"token": "\xff\xfe"}', JSON, 400, "parse_error", None),
    "lone surrogate escape": ('{"token": "\\ud800"}', JSON, 400, "invalid_format", "token"),
    "deeply nested arrays": (
        '{"token": ' + "[" * 100_000 + "]" * 100_000 + "}",
        JSON,
        400,
        "parse_error",
        None,
    ),
    "missing field": ("{}", JSON, 400, "required", "token"),
    "empty body": ("", JSON, 400, "required", "token"),
    "top-level string": ('"123456"', JSON, 400, "invalid", "non_field_errors"),
    "top-level number": ("123456", JSON, 400, "invalid", "non_field_errors"),
    "top-level list": ('["123456"]', JSON, 400, "invalid", "non_field_errors"),
    "top-level null": ("null", JSON, 400, "null", "non_field_errors"),
    "form body": (
        "token=123456",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
        None,
    ),
    "multipart body": (
        '--b\r\nContent-Disposition: form-data; name="token"\r\n\r\n123456\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
        415,
        "unsupported_media_type",
        None,
    ),
    "text body": ("123456", "text/plain", 415, "unsupported_media_type", None),
}


@pytest.fixture(params=list(CODE_ENDPOINTS))
def endpoint(request) -> str:
    return request.param


@pytest.fixture
def device(endpoint, user, make_device):
    """The endpoint's device, with two failures on record and, once confirmed, an earlier step
    used: a reset would show as much as a count."""
    confirmed = endpoint != "verify"
    return device_for(
        endpoint, user, make_device, failure_count=2, last_used_step=7 if confirmed else 0
    )


def is_reservation(sql: str) -> bool:
    return sql.startswith("UPDATE") and "failure_count" in sql.split("WHERE", 1)[0]


class Unchanged:
    """Captures the queries of a request; ``assert_nothing_written()`` checks the outcome."""

    def __init__(self, device):
        self.device = device
        self.before = TOTPDevice.objects.filter(pk=device.pk).values().first()
        self.queries = CaptureQueriesContext(connection)

    def __enter__(self):
        self.queries.__enter__()
        return self

    def __exit__(self, *exc):
        self.queries.__exit__(*exc)

    def assert_nothing_written(self) -> None:
        """No write, but a reservation of a guess (lockout.reserve) that matched no row: a code
        of 6 to 8 digits is reserved on the condition that the device has codes of its length."""
        writes = [
            q["sql"]
            for q in self.queries.captured_queries
            if q["sql"].lstrip().split(" ", 1)[0].upper() in WRITES and not is_reservation(q["sql"])
        ]
        assert writes == []
        assert TOTPDevice.objects.filter(pk=self.device.pk).values().first() == self.before


@pytest.mark.parametrize("token,code", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_malformed_token_is_refused_with_a_field_error_and_writes_nothing(
    auth_client, endpoint, device, token, code
):
    with Unchanged(device) as unchanged:
        response = post_token(auth_client, CODE_ENDPOINTS[endpoint], token)

    assert_error(response, 400, code, field="token")
    unchanged.assert_nothing_written()


@pytest.mark.parametrize(
    "body,content_type,status,code,field", BAD_BODIES.values(), ids=BAD_BODIES.keys()
)
def test_malformed_body_is_refused_with_a_code_and_writes_nothing(
    auth_client, endpoint, device, body, content_type, status, code, field
):
    with Unchanged(device) as unchanged:
        response = auth_client.post(CODE_ENDPOINTS[endpoint], body, content_type=content_type)

    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    if field is not None:
        assert body["errors"][field][0]["code"] == code
    unchanged.assert_nothing_written()


def test_unknown_field_is_refused_and_the_code_next_to_it_is_not_consumed(
    auth_client, endpoint, device
):
    code = current_code(device)
    with Unchanged(device) as unchanged:
        response = post_token(auth_client, CODE_ENDPOINTS[endpoint], code, remember_me=True)

    assert_error(response, 400, "unexpected_field", field="remember_me")
    unchanged.assert_nothing_written()
    assert post_token(auth_client, CODE_ENDPOINTS[endpoint], code).status_code == 200


def test_code_in_two_groups_of_three_with_one_space_is_accepted(auth_client, endpoint, device):
    code = current_code(device)

    response = post_token(auth_client, CODE_ENDPOINTS[endpoint], f"{code[:3]} {code[3:]}")

    assert response.status_code == 200, response.content
    after = reload(device)
    assert after is None or after.last_used_step == step_at(device)


def test_eight_digit_device_takes_eight_digits_in_groups_of_four(auth_client, user, make_device):
    device = device_for("validate", user, make_device, digits=8)
    code = code_for_step(device, step_at(device))
    assert len(code) == 8

    response = post_token(auth_client, CODE_ENDPOINTS["validate"], f"{code[:4]} {code[4:]}")

    assert response.status_code == 200, response.content


@pytest.mark.parametrize("digits,token", [(8, "123456"), (8, "123 456"), (6, "12345678")])
def test_code_of_another_length_than_the_devices_is_malformed(
    auth_client, user, make_device, digits, token
):
    device = device_for("validate", user, make_device, digits=digits)
    with Unchanged(device) as unchanged:
        response = post_token(auth_client, CODE_ENDPOINTS["validate"], token)

    assert_error(response, 400, "invalid_format", field="token")
    unchanged.assert_nothing_written()


@pytest.mark.parametrize("token", ["ſ" * 20, "ﬆ" * 10, "ABCDE-FGHJK-MNPQR-ſTVWX"])
@pytest.mark.parametrize("endpoint", ["validate", "disable"])
def test_non_ascii_letters_are_not_read_as_a_recovery_code(auth_client, endpoint, device, token):
    """'ſ' and 'ﬆ' upper-case to ASCII 'S' and 'ST'; the token is not ASCII, so it is malformed,
    not a guess to count."""
    with Unchanged(device) as unchanged:
        response = post_token(auth_client, CODE_ENDPOINTS[endpoint], token)

    assert_error(response, 400, "invalid_format", field="token")
    unchanged.assert_nothing_written()


@pytest.mark.parametrize("token,code", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_login_code_step_refuses_a_malformed_token_and_writes_nothing(
    api_client, user, password, make_device, token, code
):
    device = make_device(user, secret=SECRET, failure_count=2, last_used_step=7)
    ticket = start_login(api_client, user, password)
    with Unchanged(device) as unchanged:
        response = api_client.post(LOGIN_VERIFY, {"ticket": ticket, "token": token}, format="json")

    assert_error(response, 400, code, field="token")
    unchanged.assert_nothing_written()


# --- generate: no code, but the same strict body ------------------------------------------------

GENERATE_BODIES = {
    "malformed JSON": ('{"x": ', JSON, 400, "parse_error", None),
    "unknown field": ('{"token": "123456"}', JSON, 400, "unexpected_field", "token"),
    "top-level list": ("[]", JSON, 400, "invalid", "non_field_errors"),
    "top-level null": ("null", JSON, 400, "null", "non_field_errors"),
    "deeply nested arrays": ("[" * 100_000 + "]" * 100_000, JSON, 400, "parse_error", None),
    "form body": ("a=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type", None),
    "text body": ("hello", "text/plain", 415, "unsupported_media_type", None),
}


@pytest.mark.parametrize(
    "body,content_type,status,code,field", GENERATE_BODIES.values(), ids=GENERATE_BODIES.keys()
)
def test_generate_refuses_a_bad_body_and_enrolls_nothing(
    auth_client, user, body, content_type, status, code, field
):
    with CaptureQueriesContext(connection) as queries:
        response = auth_client.post(GENERATE, body, content_type=content_type)

    assert_error(response, status, code, field=field)
    assert not [q for q in queries.captured_queries if q["sql"].split(" ", 1)[0] in WRITES]
    assert not TOTPDevice.objects.filter(user=user).exists()


# --- a body over Django's DATA_UPLOAD_MAX_MEMORY_SIZE (issue 12.3) -----------------------------


@pytest.mark.parametrize("url", [*CODE_ENDPOINTS.values(), GENERATE, LOGIN, LOGIN_VERIFY])
def test_a_body_over_data_upload_max_memory_size_gets_a_json_413(auth_client, settings, url):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"token": "' + "1" * 1000 + '"}'

    response = auth_client.post(url, body, content_type=JSON)

    assert_error(response, 413, "request_too_large")


def test_a_body_at_data_upload_max_memory_size_is_read(auth_client, settings, device, endpoint):
    body = f'{{"token": "{current_code(device)}"}}'
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body.encode())

    response = auth_client.post(CODE_ENDPOINTS[endpoint], body, content_type=JSON)

    assert response.status_code == 200, response.content


def test_the_parser_holds_the_limit_where_drf_hands_it_the_stream(settings):
    """DRF before 3.17.2 gave the JSON parser the request stream, where Django's limit does not
    apply; the parser applies it itself (whatever the Content-Length)."""
    import io

    from django.core.exceptions import RequestDataTooBig

    from drf_totp.parsers import JSONParser

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    assert JSONParser().parse(io.BytesIO(b'{"a": 123}')) == {"a": 123}  # 10 bytes
    with pytest.raises(RequestDataTooBig):
        JSONParser().parse(io.BytesIO(b'{"a": 1234}'))
