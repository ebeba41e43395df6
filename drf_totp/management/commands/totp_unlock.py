from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser

from drf_totp import devices

from ._user import UserCommand


class Command(UserCommand):
    help = "Lift a user's lock and clear the count of wrong codes."

    def handle_user(self, user: AbstractBaseUser, **options: Any) -> None:
        name = user.get_username()
        if devices.unlock(user):
            self.stdout.write(self.style.SUCCESS(f"Unlocked {name}: failures and lock cleared."))
        else:
            self.stdout.write(f"{name} is not locked; nothing to do.")
