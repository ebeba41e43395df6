"""The guess limit: how long a user is locked after a given number of consecutive failures.

After ``TOTP_FREE_FAILURES`` failures, each further failure locks for ``TOTP_LOCKOUT_SECONDS``,
doubled with every failure and capped at ``TOTP_LOCKOUT_MAX_SECONDS``. After
``TOTP_MAX_FAILURES`` consecutive failures, TOTP codes stay refused until a recovery code is
used or an administrator unlocks the user.
"""

from __future__ import annotations

from .settings import totp_settings


def lock_seconds(failures: int) -> int:
    """Seconds of lock that the ``failures``-th consecutive failure earns (0: none)."""
    extra = failures - totp_settings.FREE_FAILURES
    if extra <= 0:
        return 0
    cap = totp_settings.LOCKOUT_MAX_SECONDS
    base = totp_settings.LOCKOUT_SECONDS
    # Shift only while it can stay under the cap, so huge counts never build huge integers.
    if extra > cap.bit_length() + 1:
        return cap
    return min(base << (extra - 1), cap)


def lock_schedule() -> list[tuple[int, int]]:
    """``(failures, seconds)`` for each count whose lock is below the cap, then the first capped count.

    The last entry's duration also applies to every higher count.
    """
    schedule = []
    free, cap = totp_settings.FREE_FAILURES, totp_settings.LOCKOUT_MAX_SECONDS
    for failures in range(free + 1, free + cap.bit_length() + 3):
        seconds = lock_seconds(failures)
        schedule.append((failures, seconds))
        if seconds >= cap:
            break
    return schedule
