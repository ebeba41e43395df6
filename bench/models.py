"""A plain model over drf-totp's device table, for the floor (bench/floor.py).

Unmanaged: the table is drf-totp's own. Its ``secret`` is a plain TextField, so the floor reads
the ciphertext and decrypts it itself, without drf-totp's field.
"""

from django.db import models


class FloorDevice(models.Model):
    user_id = models.BigIntegerField()
    secret = models.TextField()
    is_confirmed = models.BooleanField()
    confirmed_at = models.DateTimeField(null=True)
    last_used_at = models.DateTimeField(null=True)
    last_used_step = models.BigIntegerField()
    use_count = models.BigIntegerField()
    failure_count = models.IntegerField()
    locked_until = models.DateTimeField(null=True)
    weak_secret = models.BooleanField()

    class Meta:
        managed = False
        db_table = "drf_totp_totpdevice"

    def __str__(self) -> str:
        return f"device {self.pk}"
