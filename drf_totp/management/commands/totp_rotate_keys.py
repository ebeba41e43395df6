from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from drf_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Re-encrypt every TOTP secret under the newest key of TOTP_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        for device in TOTPDevice.objects.only("pk", "secret", "created_at").iterator():
            # Writing encrypts with the first (newest) key; reading decrypted with any key.
            # created_at changes when a pending secret is replaced: never write back a stale one.
            count += TOTPDevice.objects.filter(pk=device.pk, created_at=device.created_at).update(
                secret=device.secret
            )
        self.stdout.write(
            self.style.SUCCESS(f"Re-encrypted {count} secret(s) under the newest key.")
        )
