"""Fresh codes for the load generator: each user's code accepted once, as drf-totp requires.

A code is accepted for a step later than the user's last accepted one, and steps T-1, T, T+1 are
accepted at step T. So during step T a user who last used a step before T can validate with the
code of T and then with the code of T+1: the bench prepares the codes of the steps it is given, in
ascending order per user, and sends one user's requests from one connection, one after another.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pyotp

from bench.seed import Member

PERIOD = 30


def current_step() -> int:
    return int(time.time()) // PERIOD


def seconds_left_in_step() -> float:
    return PERIOD - time.time() % PERIOD


def wait_for_room(seconds: float) -> None:
    """Return at once if the current step has ``seconds`` left, else at the next step's start."""
    left = seconds_left_in_step()
    if left < seconds:
        time.sleep(left + 0.2)


class Pool:
    """The seeded users, with the state of their devices as the database last reported it."""

    def __init__(self, members: Sequence[Member]) -> None:
        self.members = list(members)
        self._totp = {m.user_id: pyotp.TOTP(m.secret, interval=PERIOD) for m in self.members}

    def code(self, member: Member, step: int) -> str:
        return self._totp[member.user_id].generate_otp(step)

    def wrong_code(self, member: Member, step: int) -> str:
        """A code valid at no step from ``step - 1`` to ``step + 2``."""
        valid = {self.code(member, s) for s in range(step - 1, step + 3)}
        return next(c for c in (f"{n:06d}" for n in range(10)) if c not in valid)

    def refresh(self) -> None:
        """Read every device's last accepted step and use count back from the database."""
        from drf_totp.models import TOTPDevice

        by_user = {m.user_id: m for m in self.members}
        rows = TOTPDevice.objects.filter(user_id__in=list(by_user)).values_list(
            "user_id", "last_used_step", "use_count", "confirmed_at"
        )
        for user_id, last_used_step, use_count, confirmed_at in rows:
            member = by_user[user_id]
            member.last_used_step = last_used_step
            member.use_count = use_count
            member.confirmed_at = confirmed_at

    def allocate(
        self, step: int, offsets: Sequence[int], need: int, lanes: int
    ) -> list[list[tuple[Member, int, int]]]:
        """Up to ``need`` (member, step, uses before it) triples for steps ``step + offset``.

        Lane ``i`` gets the members ``i, i + lanes, ...``; a lane lists the steps of one member
        in ascending order, so sent in order by one connection none is refused as reused.
        """
        out: list[list[tuple[Member, int, int]]] = [[] for _ in range(lanes)]
        last = [m.last_used_step for m in self.members]
        taken = [0] * len(self.members)
        total = 0
        for offset in sorted(offsets):
            target = step + offset
            for index, member in enumerate(self.members):
                if total >= need:
                    return out
                if last[index] < target:
                    out[index % lanes].append((member, target, taken[index]))
                    last[index] = target
                    taken[index] += 1
                    total += 1
        return out
