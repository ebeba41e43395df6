"""Signals sent once the change they report is committed, each also logged on the
``drf_totp`` logger (INFO; failures and locks at WARNING). None carries a code or a secret.

Every signal is sent with ``sender`` (the user's class), ``user`` and ``request`` (None when the
action did not come from a request, e.g. the admin or a command).

- ``totp_enabled``: a device was confirmed.
- ``totp_disabled``: the device and recovery codes were deleted (by the user or an admin).
- ``totp_unlocked``: an administrator lifted the user's lock.
- ``totp_verified``: a code (TOTP or recovery) was accepted; ``method`` is "totp" or "recovery".
- ``totp_failed``: a code was refused and counted (wrong, or already used); ``failure_count``
  is the new count.
- ``totp_locked``: a failure locked the user; ``locked_until``, ``failure_count``.
- ``totp_locked_out``: the failure count reached ``TOTP_MAX_FAILURES``: TOTP codes are refused
  until a recovery code or an unlock; ``failure_count``.
- ``recovery_code_used``: a recovery code was consumed; ``remaining`` codes are left.
- ``recovery_codes_regenerated``: a new set replaced the old one.

The failure signals carry the state that the statement counting the failure returned (never a
later read), so each count, each lock and the lock-out are signalled exactly once, however many
requests run together.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal


class Event(Signal):
    """A signal that knows its name, for the log line sent with it."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


totp_enabled = Event("totp_enabled")
totp_disabled = Event("totp_disabled")
totp_unlocked = Event("totp_unlocked")
totp_verified = Event("totp_verified")
totp_failed = Event("totp_failed")
totp_locked = Event("totp_locked")
totp_locked_out = Event("totp_locked_out")
recovery_code_used = Event("recovery_code_used")
recovery_codes_regenerated = Event("recovery_codes_regenerated")


logger = logging.getLogger("drf_totp")

_WARNINGS = {"totp_failed", "totp_locked", "totp_locked_out"}


def send_on_commit(signal: Event, user: Any, request: Any = None, **extra: Any) -> None:
    """Log and send ``signal`` when the current transaction commits (at once in autocommit)."""

    def send() -> None:
        level = logging.WARNING if signal.name in _WARNINGS else logging.INFO
        if logger.isEnabledFor(level):  # every accepted code passes here: format only if logged
            details = "".join(f" {key}={value}" for key, value in sorted(extra.items()))
            logger.log(level, "%s user=%s%s", signal.name, user.pk, details)
        signal.send(sender=type(user), user=user, request=request, **extra)

    transaction.on_commit(send)
