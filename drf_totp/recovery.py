"""Recovery codes: single-use codes that stand in for the authenticator.

A code is 20 characters from an alphabet without look-alikes (about 98 bits), shown in four
groups of five. Only a keyed hash (Django's ``salted_hmac`` with ``SECRET_KEY``) is stored;
``SECRET_KEY_FALLBACKS`` keep older codes usable across a key rotation.

``totp_import`` also brings the codes users printed for another package, each stored as a keyed
hash marked with its format (``RecoveryCode.Format``) and read as that package read it:
django-otp's static tokens and allauth's codes without punctuation, spaces or case (as allauth
compares them), drf-totp 0.2's backup codes as 0.2 did, with 0.2's own digest.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils.crypto import salted_hmac
from django.views.decorators.debug import sensitive_variables

from .models import RecoveryCode
from .settings import totp_settings

# No 0/O, 1/I/L or U/V confusion: 30 symbols.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUPS = 4
GROUP_LENGTH = 5
_SALT = "drf_totp.recovery-code"


@sensitive_variables()
def generate() -> tuple[str, str]:
    """A new code: (as stored before hashing, as shown to the user in groups)."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LENGTH))
    shown = "-".join(code[i : i + GROUP_LENGTH] for i in range(0, len(code), GROUP_LENGTH))
    return code, shown


@sensitive_variables()
def normalize(raw: str) -> str | None:
    """The code in ``raw`` with case, spaces and dashes ignored, or None if it is not one."""
    if not raw.isascii():  # .upper() would turn e.g. "ſ" into "S"
        return None
    code = raw.replace("-", "").replace(" ", "").upper()
    if len(code) != GROUPS * GROUP_LENGTH or not all(c in ALPHABET for c in code):
        return None
    return code


# --- Imported formats ------------------------------------------------------------------------

Format = RecoveryCode.Format

# Longer django-otp or allauth codes are not imported: django-otp keeps at most 16 characters,
# allauth makes 8 digits by default; and a long input is no such code (no query for it).
PLAIN_MAX_LENGTH = 32
_PUNCTUATION_AND_SPACES = str.maketrans("", "", string.punctuation + string.whitespace)
_SPACES_AND_DASHES = str.maketrans("", "", string.whitespace + "-")
# drf-totp 0.2's backup codes: ten characters of this pattern, hashed with this salt (0.2 put
# "hmac_sha256$" before the hex digest; the digest alone is kept here).
_LEGACY_CODE = re.compile(r"[A-Z2-9]{10}")
_LEGACY_SALT = "drf_totp.backup_code"


def _plain(raw: str) -> str | None:
    """A django-otp static token or an allauth code as allauth compares codes: punctuation and
    spaces ignored, lower case. A 6-digit number is never one: it is an authenticator code."""
    if not raw.isascii():
        return None
    code = raw.translate(_PUNCTUATION_AND_SPACES).lower()
    if not code or len(code) > PLAIN_MAX_LENGTH or _six_digits(code):
        return None
    return code


def _six_digits(code: str) -> bool:
    """A 6-digit number: an authenticator code, never a recovery code of any form."""
    return len(code) == 6 and code.isdigit()


def _legacy(raw: str) -> str | None:
    """A drf-totp 0.2 backup code as 0.2 read it: spaces and dashes ignored, upper case."""
    if not raw.isascii():
        return None
    code = raw.translate(_SPACES_AND_DASHES).upper()
    return code if _LEGACY_CODE.fullmatch(code) else None


# Per format: how a typed code is normalized, and the salt of its keyed hash.
_FORMATS: dict[str, tuple[Callable[[str], str | None], str]] = {
    str(Format.DRF_TOTP): (normalize, _SALT),
    str(Format.DJANGO_OTP): (_plain, f"{_SALT}.django-otp"),
    str(Format.ALLAUTH): (_plain, f"{_SALT}.allauth"),
    str(Format.DRF_TOTP_0_2): (_legacy, _LEGACY_SALT),
}


@sensitive_variables()
def digests(code: str, format: str = str(Format.DRF_TOTP)) -> list[str]:
    """The stored form of ``code`` (normalized) under the current key (first) and every
    fallback key."""
    salt = _FORMATS[format][1]
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    return [salted_hmac(salt, code, secret=key, algorithm="sha256").hexdigest() for key in keys]


def imported_digest(format: str, raw: str) -> str | None:
    """The digest to store for a code of another package as that package gave it, or None if
    drf-totp cannot accept it in that form."""
    code = _FORMATS[format][0](raw)
    return None if code is None else digests(code, format)[0]


def _readings(raw: str) -> dict[str, str]:
    """Per format ``raw`` can be a code of, the code as that format reads it."""
    found = {}
    for format, (read, _salt) in _FORMATS.items():
        code = read(raw)
        if code is not None:
            found[format] = code
    return found


@sensitive_variables()
def candidate_digests(readings: dict[str, str]) -> list[str]:
    """The digests a recovery code read as ``readings`` (from ``lookup``) is looked for under:
    of each reading, under every key."""
    return [digest for format, code in readings.items() for digest in digests(code, format)]


@sensitive_variables()
def lookup(user_id: Any, raw: str, *, totp_code: bool) -> dict[str, str] | None:
    """How to read ``raw`` if it is to be checked as one of the user's recovery codes (per
    format, the code as that format reads it; ``candidate_digests`` makes what to look for),
    or None if it is not to be checked as one.

    A code of drf-totp's form always is (no query, no hashing: the digests are made only once
    the guess is reserved). Imported forms look like many other inputs, so they are only
    checked for a user holding codes of that form (one query, made only for input of such a
    form: never for a 6-digit number). Input that is also a TOTP code of the device
    (``totp_code``: an allauth code on an 8-digit device) is checked as a recovery code only if
    it is one of the user's, used or not; otherwise it is a TOTP code.
    """
    if totp_code and _six_digits(raw.replace(" ", "")):
        return None  # the path of nearly every login: no work
    found = _readings(raw)
    if str(Format.DRF_TOTP) in found or not found:
        return found or None
    held = set(
        RecoveryCode.objects.filter(user_id=user_id, format__in=list(found)).values_list(
            "digest", flat=True
        )
    )
    if totp_code:
        return found if held.intersection(candidate_digests(found)) else None
    return found if held else None


@sensitive_variables()
def issue(user: AbstractBaseUser, now: datetime) -> list[str]:
    """Replace the user's recovery codes with a new set; return the codes, shown once."""
    codes = [generate() for _ in range(totp_settings.RECOVERY_CODES_COUNT)]
    rows = [
        RecoveryCode(user_id=user.pk, digest=digests(code)[0], created_at=now) for code, _ in codes
    ]
    with transaction.atomic():
        RecoveryCode.objects.filter(user=user).delete()
        RecoveryCode.objects.bulk_create(rows)
    return [shown for _, shown in codes]


def unused(user_id: Any) -> QuerySet[RecoveryCode]:
    return RecoveryCode.objects.filter(user_id=user_id, used_at__isnull=True)
