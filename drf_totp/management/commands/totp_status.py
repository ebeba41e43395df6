from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from drf_totp import devices

from ._user import UserCommand


def _when(value: datetime | None, default: str = "never") -> str:
    if value is None:
        return default
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.isoformat(timespec="seconds")


class Command(UserCommand):
    help = "Show a user's two-factor state (never the secret)."

    def handle_user(self, user: AbstractBaseUser, **options: Any) -> None:
        state = devices.status(user)
        lines = [f"User: {user.get_username()}"]
        if state.enabled:
            lines.append("2FA: enabled")
            lines.append(f"Confirmed at: {_when(state.confirmed_at, 'unknown')}")
            lines.append(f"Last used at: {_when(state.last_used_at)}")
            if state.locked_out:
                locked = (
                    "locked out (authenticator codes refused until a recovery code or totp_unlock)"
                )
            elif state.locked_until is not None:
                locked = f"until {_when(state.locked_until)}"
            else:
                locked = "no"
            lines.append(f"Locked: {locked}")
            lines.append(f"Recovery codes remaining: {state.recovery_codes_remaining}")
            if state.weak_secret:
                lines.append(
                    "Secret: weak (under 112 bits, or no key): the user should enroll again"
                )
        elif state.pending:
            lines.append("2FA: not enabled (enrollment started, not confirmed)")
        else:
            lines.append("2FA: not enabled")
        self.stdout.write("\n".join(lines))
