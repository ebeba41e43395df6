"""What the per-user commands share: the ``username`` argument and the user it names."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError, CommandParser


class UserCommand(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        field = get_user_model().USERNAME_FIELD
        parser.add_argument("username", help=f"The user's {field}.")

    def handle(self, *args: Any, **options: Any) -> None:
        self.handle_user(get_user(options["username"]), **options)

    def handle_user(self, user: AbstractBaseUser, **options: Any) -> None:
        raise NotImplementedError


def get_user(username: str) -> AbstractBaseUser:
    """The user whose ``USERNAME_FIELD`` is ``username`` (through the model's natural key)."""
    user_model = get_user_model()
    try:
        return user_model._default_manager.get_by_natural_key(username)
    except user_model.DoesNotExist:
        raise CommandError(f"No user with {user_model.USERNAME_FIELD} {username!r}.") from None
