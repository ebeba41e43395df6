from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from drf_totp.fields import Unreadable
from drf_totp.models import TOTPDevice, secret_columns


class Command(BaseCommand):
    help = (
        "Re-encrypt every TOTP secret under the newest key of TOTP_ENCRYPTION_KEYS. A secret no "
        "configured key decrypts is named and left as it is; the command then exits with 1."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        username = f"user__{get_user_model().USERNAME_FIELD}"
        rows = TOTPDevice.objects.values_list("pk", "user_id", username, "created_at", "secret")
        count = 0
        unreadable = []
        for pk, user_id, name, created_at, secret in rows.order_by("pk").iterator():
            if isinstance(secret, Unreadable):
                unreadable.append(pk)
                self.stderr.write(
                    f"TOTP device {pk} of user {name!r} (id {user_id}): {secret.cause}"
                )
                continue
            # Writing encrypts with the first (newest) key (and sets the weak flag anew); reading
            # decrypted with any key. created_at changes when a pending secret is replaced:
            # never write back a stale one.
            count += TOTPDevice.objects.filter(pk=pk, created_at=created_at).update(
                **secret_columns(secret)
            )
        self.stdout.write(
            self.style.SUCCESS(f"Re-encrypted {count} secret(s) under the newest key.")
        )
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} secret(s) could not be decrypted and were left as they were "
                f"(devices {', '.join(map(str, unreadable))}). Put the key that encrypted them "
                "back and run the command again, or reset those users' 2FA (totp_reset)."
            )
