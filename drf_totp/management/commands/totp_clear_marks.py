from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from drf_totp import marks


class Command(BaseCommand):
    help = "Delete the second-factor marks of tokens that no longer exist or have expired."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = marks.clear_stale(timezone.now())
        self.stdout.write(f"Deleted {deleted} mark(s) of tokens that are gone.")
