"""Bring confirmed TOTP devices over from other packages: django-otp, django-allauth's MFA, and
drf-totp 0.x (this package's predecessor under the same name). One module per source; the
report, the candidate device and the writer they share are in ``base``.

One plain function per source, each returning a ``Report`` of what was imported and what was
skipped and why. A user who already has a drf_totp device is skipped, and so is a user for whom
a device was imported before (``ImportRecord``, kept when the device is deleted): after
``disable/`` or ``totp_reset`` no run brings the old secret back, unless the user is named in
``reimport``. A dry run makes every check and writes nothing.

Every import keeps the device's confirmed state and its last used time step, so no code that
the old package accepted is accepted again; where the old package kept no such step (allauth
remembers used codes only in its cache, drf-totp 0.1 not at all), the step is set to the
current one at import time, and the report says so. The user's unused recovery codes come along
as keyed hashes in their own format (``RecoveryCode.Format``), each usable once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from .allauth import ALLAUTH, import_allauth
from .allauth import read as _read_allauth
from .base import (
    ALREADY_ENABLED,
    PERIOD_RANGE,
    SUPPORTED_DIGITS,
    Imported,
    Reader,
    Report,
    Skipped,
    logger,
    run,
)
from .django_otp import DJANGO_OTP, import_django_otp
from .django_otp import read as _read_django_otp
from .drf_totp_0 import DRF_TOTP_0, LEGACY_AUTH_TABLE, LEGACY_BACKUP_TABLE, import_drf_totp_0
from .drf_totp_0 import read as _read_drf_totp_0

__all__ = [
    "ALLAUTH",
    "ALREADY_ENABLED",
    "DJANGO_OTP",
    "DRF_TOTP_0",
    "LEGACY_AUTH_TABLE",
    "LEGACY_BACKUP_TABLE",
    "PERIOD_RANGE",
    "SOURCES",
    "SUPPORTED_DIGITS",
    "Imported",
    "Report",
    "Skipped",
    "import_all",
    "import_allauth",
    "import_django_otp",
    "import_drf_totp_0",
    "logger",
]

_READERS: dict[str, Reader] = {
    DJANGO_OTP: _read_django_otp,
    ALLAUTH: _read_allauth,
    DRF_TOTP_0: _read_drf_totp_0,
}
SOURCES = tuple(_READERS)


def import_all(
    sources: Iterable[str] | None = None,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    reimport: Collection[Any] | None = None,
) -> list[Report]:
    """Import from ``sources`` (names from ``SOURCES``; all of them if None), in that order.

    A user found in several sources gets the device of the first; the others are skipped. With
    ``reimport`` (user ids), only those users are imported, even if imported before.
    """
    names = list(SOURCES if sources is None else sources)
    unknown = [name for name in names if name not in _READERS]
    if unknown:
        raise ValueError(
            f"Unknown source(s): {', '.join(unknown)}; choose from {', '.join(SOURCES)}."
        )
    return run([_READERS[name] for name in names], dry_run=dry_run, now=now, reimport=reimport)
