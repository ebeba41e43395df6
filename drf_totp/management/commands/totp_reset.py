from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser

from drf_totp import devices

from ._user import UserCommand


class Command(UserCommand):
    help = "Turn a user's 2FA off without a code: delete the device and recovery codes."

    def handle_user(self, user: AbstractBaseUser, **options: Any) -> None:
        name = user.get_username()
        if devices.reset(user):
            self.stdout.write(
                self.style.SUCCESS(f"2FA reset for {name}: device and recovery codes deleted.")
            )
        else:
            self.stdout.write(f"{name} has no TOTP device; nothing to reset.")
