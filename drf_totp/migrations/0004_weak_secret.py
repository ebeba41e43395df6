"""The ``weak_secret`` flag, and its value for the devices that exist (which takes decrypting
each secret, once). A secret that cannot be decrypted now keeps False: ``totp_rotate_keys``
sets the flag of every secret it re-encrypts, once the keys are right."""

from typing import Any

from django.db import migrations, models

from drf_totp import otp
from drf_totp.fields import Unreadable


def flag_weak_secrets(apps: Any, schema_editor: Any) -> None:
    device_model = apps.get_model("drf_totp", "TOTPDevice")
    devices = device_model.objects.using(schema_editor.connection.alias)
    weak = [
        pk
        for pk, secret in devices.values_list("pk", "secret").iterator()
        if not isinstance(secret, Unreadable) and otp.is_weak(secret)
    ]
    for start in range(0, len(weak), 500):  # SQLite allows 999 parameters (before 3.32)
        devices.filter(pk__in=weak[start : start + 500]).update(weak_secret=True)


class Migration(migrations.Migration):
    dependencies = [
        ("drf_totp", "0003_imports"),
    ]

    operations = [
        migrations.AddField(
            model_name="totpdevice",
            name="weak_secret",
            field=models.BooleanField(
                default=False,
                editable=False,
                help_text=(
                    "The secret is under 112 bits (older packages issued such keys) or no key at "
                    "all: the user should enroll again. Set whenever the secret is written."
                ),
                verbose_name="weak secret",
            ),
        ),
        migrations.RunPython(flag_weak_secrets, migrations.RunPython.noop, elidable=True),
    ]
