"""The two-step login: the password yields a ticket, the ticket and a code yield the credential."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.base_user import AbstractBaseUser

from . import exceptions, statements, tickets
from .verification import Accepted, check


@dataclass(frozen=True)
class PasswordStep:
    user: AbstractBaseUser
    ticket: str | None  # None: the user has no 2FA, the login is complete


def start(request: Any, username: str, password: str) -> PasswordStep:
    """Check the password. Wrong credentials and inactive users get one and the same error."""
    credentials = {get_user_model().USERNAME_FIELD: username, "password": password}
    # Django's backends hash the password even for unknown users, so timing does not tell.
    user = authenticate(request, **credentials)
    # Some backends (AllowAllUsersModelBackend) authenticate inactive users; we never log them in.
    if user is None or not getattr(user, "is_active", True):
        raise exceptions.InvalidCredentials()
    # The ticket needs the device's state, never its secret: a secret that cannot be decrypted
    # fails at the code step, which names the device, and not here.
    device = statements.confirmed_device(user, secret=False)
    return PasswordStep(user, tickets.issue(user, device) if device is not None else None)


def finish(ticket: str, raw: str, *, now: datetime | None = None, request: Any = None) -> Accepted:
    """Redeem the ticket with a TOTP or recovery code; the ticket is dead afterwards."""
    device = tickets.redeem(ticket)
    seen = device.use_count

    def once(accepted: Accepted) -> int:
        # Only while no other login completed since the ticket was checked: a ticket works once.
        return accepted.row().filter(use_count=seen).update(**accepted.changes())

    return check(device, raw, now=now, request=request, action=once)
