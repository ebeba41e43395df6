"""Recovery codes: single-use codes that stand in for the authenticator.

A code is 20 characters from an alphabet without look-alikes (about 98 bits), shown in four
groups of five. Only a keyed hash (Django's ``salted_hmac`` with ``SECRET_KEY``) is stored;
``SECRET_KEY_FALLBACKS`` keep older codes usable across a key rotation.
"""

from __future__ import annotations

import secrets
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


@sensitive_variables()
def digests(code: str) -> list[str]:
    """The stored form of ``code`` under the current key (first) and every fallback key."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    return [salted_hmac(_SALT, code, secret=key, algorithm="sha256").hexdigest() for key in keys]


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
