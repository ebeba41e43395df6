"""The two-step login: the password yields a ticket, the ticket and a code yield the credential."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import router, transaction
from django.views.decorators.debug import sensitive_variables

from . import exceptions, policy, statements, tickets
from .models import TOTPDevice
from .verification import Accepted, check

T = TypeVar("T")


@dataclass(frozen=True)
class PasswordStep:
    user: AbstractBaseUser
    ticket: str | None  # None: the user has no 2FA, the login is complete
    # No 2FA, but TOTP_REQUIRED covers the user (grace period or not): they should enroll.
    enrollment_required: bool = False


@sensitive_variables()
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
    if device is None:
        return PasswordStep(user, None, enrollment_required=policy.required(user))
    return PasswordStep(user, tickets.issue(user, device))


@sensitive_variables()
def finish(
    ticket: str,
    raw: str,
    issue: Callable[[Accepted], T],
    *,
    now: datetime | None = None,
    request: Any = None,
) -> T:
    """Redeem the ticket with a TOTP or recovery code and return what ``issue`` makes of the
    accepted code (the credential); the ticket is dead afterwards.

    Using up the code and the ticket and issuing the credential succeed or fail together: if
    ``issue`` raises, nothing of the success is written, and the same ticket and code can try
    again.
    """
    device = tickets.redeem(ticket)
    seen = device.use_count
    issued: list[T] = []

    def once(accepted: Accepted) -> int:
        # A recovery code's check runs in a transaction already: this is a savepoint in it.
        with transaction.atomic(using=router.db_for_write(TOTPDevice)):
            # Only while no other login completed since the ticket was checked: one login each.
            changed = accepted.row().filter(use_count=seen).update(**accepted.changes())
            if changed:
                issued.append(issue(accepted))
        return changed

    # Losing to another login with this ticket is answered as such, not as a wrong code.
    check(device, raw, now=now, request=request, action=once, lost=exceptions.InvalidTicket)
    return issued[0]
