"""Encryption of TOTP secrets at rest (Fernet, keys rotatable with MultiFernet).

Keys come from ``TOTP_ENCRYPTION_KEYS`` (newest first). Keys derived from ``SECRET_KEY`` and
``SECRET_KEY_FALLBACKS`` are always appended, so that no setting is needed, and secrets written
before explicit keys were configured still decrypt until ``totp_rotate_keys`` re-encrypts them.

Whatever goes wrong (no key opens a token, the key settings are unusable) is a ``KeyProblem``
that names the likely cause, and never the secret or its token.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from .settings import totp_settings

_HKDF_INFO = b"drf_totp secret encryption v1"
# Every Fernet token starts with its version byte 0x80 and a timestamp: base64 "gAAAAA".
# (No base32 secret can start so: base32 has no lowercase letters.)
TOKEN_PREFIX = "gAAAAA"

UNUSABLE_KEYS = (
    "TOTP_ENCRYPTION_KEYS is not a list of usable Fernet keys (manage.py check names the bad entry)"
)
NO_KEY_OPENS_IT = (
    "no configured key decrypts it: SECRET_KEY was probably changed without keeping the old one "
    "in SECRET_KEY_FALLBACKS, or a key was removed from TOTP_ENCRYPTION_KEYS before "
    "totp_rotate_keys had re-encrypted every secret under the newest one"
)


class KeyProblem(Exception):
    """A secret cannot be encrypted or decrypted with the configured keys; the message says why."""


# Called for every secret read or written. A pure function of its argument: memoized, so HKDF
# runs once per key, while the settings that name the keys are still read on every call.
@lru_cache(maxsize=16)
def derive_key(secret_key: str) -> bytes:
    """Return a Fernet key derived from a Django ``SECRET_KEY`` with HKDF-SHA256."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode()
    )
    return base64.urlsafe_b64encode(raw)


def configured_keys() -> tuple[bytes, ...]:
    """All keys able to decrypt, the one that encrypts first."""
    explicit = tuple(
        k.encode() if isinstance(k, str) else bytes(k) for k in totp_settings.ENCRYPTION_KEYS
    )
    django_keys = (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ()))
    return explicit + tuple(derive_key(k) for k in django_keys)


@lru_cache(maxsize=8)
def _fernet(keys: tuple[bytes, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def fernet() -> MultiFernet:
    try:
        return _fernet(configured_keys())
    except (TypeError, ValueError):  # a key that is not 32 bytes of url-safe base64, or no list
        raise KeyProblem(UNUSABLE_KEYS) from None


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    keys = fernet()
    try:
        return keys.decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise KeyProblem(NO_KEY_OPENS_IT) from None
