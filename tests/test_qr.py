"""The QR code that /generate/ returns encodes exactly the otpauth URL.

The SVG is decoded for real: segno's path is turned back into the QR module matrix, drawn as an
image and read by a barcode scanner (zxing-cpp).
"""

from __future__ import annotations

import re
from urllib.parse import unquote
from xml.etree import ElementTree

import pytest
import zxingcpp
from django.test import override_settings
from PIL import Image

from drf_totp import qr

GENERATE = "/auth/otp/generate/"
SVG_NS = "{http://www.w3.org/2000/svg}"
QUIET_ZONE = 4  # modules of white around the symbol, on top of segno's own border
PIXELS_PER_MODULE = 8

pytestmark = pytest.mark.usefixtures("clock")


def svg_of(data_uri: str) -> ElementTree.Element:
    header, _, payload = data_uri.partition(",")
    assert header.startswith("data:image/svg+xml"), header
    return ElementTree.fromstring(unquote(payload))


def modules(data_uri: str) -> list[list[bool]]:
    """The dark/light matrix (segno's border included) drawn by segno's SVG path.

    segno draws each run of dark modules of a row as a horizontal line of stroke width 1:
    ``M x y`` or ``m dx dy`` moves the pen (lines sit at y + 0.5), ``h w`` draws w modules.
    """
    svg = svg_of(data_uri)
    [path] = svg.iter(f"{SVG_NS}path")
    scale = float(re.fullmatch(r"scale\(([\d.]+)\)", path.get("transform", "scale(1)")).group(1))
    size = round(float(svg.get("width")) / scale)
    assert size == round(float(svg.get("height")) / scale)
    matrix = [[False] * size for _ in range(size)]
    x = y = 0.0
    commands = re.findall(r"([A-Za-z])([^A-Za-z]*)", path.get("d"))
    for command, args in commands:
        numbers = [float(n) for n in args.replace(",", " ").split()]
        if command == "M":
            x, y = numbers
        elif command == "m":
            x, y = x + numbers[0], y + numbers[1]
        elif command == "h":
            [width] = numbers
            row = int(y - 0.5)
            for column in range(round(x), round(x + width)):
                matrix[row][column] = True
            x += width
        else:
            raise AssertionError(f"unexpected path command {command!r}")
    return matrix


def image_of(matrix: list[list[bool]]) -> Image.Image:
    side = (len(matrix) + 2 * QUIET_ZONE) * PIXELS_PER_MODULE
    image = Image.new("L", (side, side), 255)
    for row, line in enumerate(matrix):
        for column, dark in enumerate(line):
            if dark:
                left = (column + QUIET_ZONE) * PIXELS_PER_MODULE
                top = (row + QUIET_ZONE) * PIXELS_PER_MODULE
                image.paste(0, (left, top, left + PIXELS_PER_MODULE, top + PIXELS_PER_MODULE))
    return image


def scan(data_uri: str) -> str:
    """What an authenticator's camera reads from the QR code: exactly one symbol, its text.

    Authenticators look for QR codes only; a full-format scan can also "see" a short 1D barcode
    (ITF, Codabar) in the module pattern of about one random secret in fifty.
    """
    image = image_of(modules(data_uri))
    [barcode] = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert barcode.format == zxingcpp.BarcodeFormat.QRCode
    return barcode.text


def test_qr_code_encodes_exactly_the_otpauth_url(auth_client):
    body = auth_client.post(GENERATE, format="json").json()

    assert scan(body["qr_svg"]) == body["otpauth_url"]


@override_settings(TOTP_ISSUER_NAME="ACME & Co", TOTP_DIGITS=8)
def test_qr_code_of_a_url_with_escaped_characters_encodes_it_verbatim(auth_client, user):
    user.email = "o'brien+2fa@example.com"
    user.save()

    body = auth_client.post(GENERATE, format="json").json()

    assert "%26" in body["otpauth_url"]
    assert scan(body["qr_svg"]) == body["otpauth_url"]


def test_regenerated_qr_code_encodes_the_new_url(auth_client):
    first = auth_client.post(GENERATE, format="json").json()
    second = auth_client.post(GENERATE, format="json").json()

    assert scan(second["qr_svg"]) == second["otpauth_url"] != first["otpauth_url"]


def test_svg_keeps_a_quiet_zone_of_four_modules(auth_client):
    matrix = modules(auth_client.post(GENERATE, format="json").json()["qr_svg"])

    border = [*matrix[:4], *matrix[-4:], *(row[:4] + row[-4:] for row in matrix)]
    assert not any(any(line) for line in border)
    assert any(matrix[4])  # the finder patterns start right after it


@pytest.mark.parametrize("length", [1, 100, 500])
def test_svg_data_uri_encodes_texts_of_any_length(length):
    text = "otpauth://totp/x?secret=" + "A" * length

    assert scan(qr.svg_data_uri(text)) == text
