"""Signals sent once the change they report is committed. None carries a code or a secret.

Every signal is sent with ``sender`` (the user's class), ``user`` and ``request`` (None when the
action did not come from a request, e.g. the admin or a command).

- ``totp_enabled``: a device was confirmed.
- ``totp_disabled``: the device and recovery codes were deleted.
- ``totp_verified``: a code (TOTP or recovery) was accepted; ``method`` is "totp" or "recovery".
- ``totp_failed``: a wrong code was counted; ``failure_count`` is the new count.
- ``totp_locked``: a failure locked the user; ``locked_until``, ``failure_count``.
- ``recovery_code_used``: a recovery code was consumed; ``remaining`` codes are left.
- ``recovery_codes_regenerated``: a new set replaced the old one.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import Signal

totp_enabled = Signal()
totp_disabled = Signal()
totp_verified = Signal()
totp_failed = Signal()
totp_locked = Signal()
recovery_code_used = Signal()
recovery_codes_regenerated = Signal()


def send_on_commit(signal: Signal, user: Any, request: Any = None, **extra: Any) -> None:
    """Send ``signal`` when the current transaction commits (at once in autocommit)."""
    transaction.on_commit(
        lambda: signal.send(sender=type(user), user=user, request=request, **extra)
    )
