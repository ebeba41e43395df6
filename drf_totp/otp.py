"""The pure part of code checking: strict parsing, constant-time matching over the window, and
which secrets are weak.

Nothing here touches the database or Django; ``pyotp`` computes the codes.
"""

from __future__ import annotations

import hmac
import re
from functools import lru_cache

import pyotp


class AnyLengthTOTP(pyotp.TOTP):
    """pyotp's TOTP, also for a secret under pyotp's minimum of 112 bits.

    Older packages issued such secrets (django-otp's 80-bit keys, the classic 16-character
    ``JBSWY3DPEHPK3PXP``); pyotp computes their codes all the same, it only refuses to start
    with one. A device keeps working with its imported secret, flagged weak (``is_weak``).
    """

    min_secret_length_bits = 8  # anything but an empty key


def is_weak(secret: str) -> bool:
    """Whether pyotp refuses ``secret``: under its 112 bits (NIST SP 800-63B's minimum for a
    shared secret), or no base32 at all."""
    try:
        pyotp.TOTP(secret)
    except ValueError:  # binascii.Error, for what is not base32, is a ValueError too
        return True
    return False


@lru_cache(maxsize=4)
def _code_pattern(digits: int) -> re.Pattern[str]:
    # ASCII digits only ([0-9], never \d, which admits other scripts). Authenticator apps show
    # codes as two groups ("123 456"), so one space between the halves is accepted.
    half = digits // 2
    return re.compile(rf"[0-9]{{{half}}} ?[0-9]{{{digits - half}}}", re.ASCII)


def parse_code(raw: str, digits: int) -> str | None:
    """Return the code as ``digits`` ASCII digits, or None if ``raw`` is not such a code."""
    if len(raw) > digits + 1 or not _code_pattern(digits).fullmatch(raw):
        return None
    return raw.replace(" ", "")


def matching_step(totp: pyotp.TOTP, code: str, step: int, window: int) -> int | None:
    """The latest step in ``step - window .. step + window`` whose code is ``code``.

    Every step of the window is computed and compared in constant time, whether or not an
    earlier one matched, so the time taken does not tell which step (if any) matched.
    """
    found = None
    for candidate in range(max(step - window, 0), step + window + 1):
        if hmac.compare_digest(totp.generate_otp(candidate).encode(), code.encode()):
            found = candidate
    return found
