"""The otpauth URL follows the Key Uri Format (issue #13): the label is ``issuer:account``, each
part URL-encoded ("/" too), with exactly one separator; a ":" inside the issuer or the account,
which the format forbids, becomes "_". Each URL is read back with pyotp and with a strict parser.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from tests.code_checks import GENERATE, post


def otpauth_url(client) -> str:
    response = post(client, GENERATE, {})
    assert response.status_code == 200, response.content
    return response.json()["otpauth_url"]


def strict_parse(url: str) -> tuple[str, str, dict[str, list[str]]]:
    """(issuer, account, parameters) of an otpauth URL, read as the Key Uri Format says and
    refusing anything it allows only loosely: the label is one path segment with exactly one
    separator, a literal ":", and neither part holds a colon, literal or encoded."""
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    label = parts.path.removeprefix("/")
    assert "/" not in label, label
    assert "%3A" not in label.upper(), label
    assert label.count(":") == 1, label
    issuer, account = label.split(":")
    params = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in params.values()), params
    return unquote(issuer, errors="strict"), unquote(account, errors="strict"), params


@pytest.fixture
def named(user):
    def name(account: str, *, email: bool = True) -> None:
        if email:
            user.email = account
        else:
            user.email, user.username = "", account
        user.save()

    return name


@pytest.mark.parametrize(
    ("issuer", "account"),
    [
        pytest.param("Ops/Team", "alice@example.com", id="slash in the issuer"),
        pytest.param("drftotp", "ops/alice@example.com", id="slash in the account"),
        pytest.param("ACME & Co", "o'brien+2fa@example.com", id="ampersand and plus"),
        pytest.param("Example Corp", "alice?x=1#y@example.com", id="space, ? and #"),
        pytest.param("Zoë's Café", "zoë@example.com", id="non-ASCII"),
        pytest.param("100% Safe", "a%40b@example.com", id="percent"),
    ],
)
def test_issuer_and_account_round_trip(auth_client, named, settings, issuer, account):
    settings.TOTP_ISSUER_NAME = issuer
    named(account)

    url = otpauth_url(auth_client)

    parsed_issuer, parsed_account, params = strict_parse(url)
    assert (parsed_issuer, parsed_account) == (issuer, account)
    assert params["issuer"] == [issuer]
    totp = pyotp.parse_uri(url)
    assert (totp.issuer, totp.name) == (issuer, account)


def test_a_slash_is_encoded_in_the_label_and_the_issuer_parameter(auth_client, named, settings):
    settings.TOTP_ISSUER_NAME = "Ops/Team"
    named("a/b@example.com")

    url = urlsplit(otpauth_url(auth_client))

    assert url.path == "/Ops%2FTeam:a%2Fb%40example.com"
    assert "issuer=Ops%2FTeam" in url.query.split("&")


def test_a_colon_in_the_account_becomes_an_underscore(auth_client, named):
    named("corp:alice", email=False)

    url = otpauth_url(auth_client)

    assert strict_parse(url)[:2] == ("drftotp", "corp_alice")
    assert pyotp.parse_uri(url).name == "corp_alice"


def test_a_colon_in_the_issuer_becomes_an_underscore_in_the_label_and_the_parameter(
    auth_client, settings
):
    settings.TOTP_ISSUER_NAME = "Ops: Team"  # refused by drf_totp.E006; the URL stays valid anyway

    url = otpauth_url(auth_client)

    issuer, _, params = strict_parse(url)
    assert issuer == params["issuer"][0] == "Ops_ Team"
    assert pyotp.parse_uri(url).issuer == "Ops_ Team"


def test_spaces_around_the_account_are_dropped(auth_client, named):
    # Parsers drop spaces before the account (the format allows them after the separator).
    named("  alice ", email=False)

    assert strict_parse(otpauth_url(auth_client))[1] == "alice"


def test_the_code_parameters_are_in_the_url_when_not_the_defaults(auth_client, settings):
    settings.TOTP_DIGITS, settings.TOTP_PERIOD, settings.TOTP_ALGORITHM = 8, 60, "SHA256"

    url = otpauth_url(auth_client)

    params = strict_parse(url)[2]
    assert (params["digits"], params["period"], params["algorithm"]) == (["8"], ["60"], ["SHA256"])
    totp = pyotp.parse_uri(url)
    assert (totp.digits, totp.interval, totp.digest().name) == (8, 60, "sha256")


def test_the_default_code_parameters_are_left_out(auth_client):
    assert set(strict_parse(otpauth_url(auth_client))[2]) == {"secret", "issuer"}
