"""The floor: what any TOTP validation must do, and nothing else, behind the same authentication.

``ValidateFloorView`` reads the user's device row, reserves the guess (one conditional UPDATE
that counts it if the row is unlocked, as any guess limit that holds under parallel requests
must, before the code is computed), decrypts the secret, computes the code of the current step
and records it with one conditional UPDATE that also resets the count: read + reserve + TOTP +
accept. No window, no lock schedule, no signal, no serializer, no credential mark.
``OneRowView`` reads the columns status reports of one row. Each exists twice: with the Django
ORM, as drf-totp (and most Django code) is written, and with raw SQL, the lowest a Django view
can go (there the read and the reservation are one ``UPDATE ... RETURNING``, as drf-totp's are
on PostgreSQL and SQLite; the ORM has no UPDATE that returns rows, so it reads first).

All of them use the project's default authentication, permission and parser classes, as
drf-totp's views do: the requests carry drf-totp's login tokens, so every row, floor or not,
authenticates with ``drf_totp.authentication.TokenAuthentication`` (the SHA-256 of the key, one
SELECT of the token joined to its user).
"""

from __future__ import annotations

import hmac
import time
from typing import Any

import pyotp
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection
from django.db.models import F, Q
from django.utils import timezone
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.models import FloorDevice
from drf_totp.crypto import derive_key

PERIOD = 30
# Built once: the floor pays for decryption, not for key derivation.
FERNET = Fernet(derive_key(settings.SECRET_KEY))
STATE = (
    "is_confirmed", "confirmed_at", "last_used_at", "locked_until", "failure_count", "weak_secret"
)  # fmt: skip

READ_AND_RESERVE = (
    "UPDATE drf_totp_totpdevice SET failure_count = failure_count + 1"
    " WHERE user_id = %s AND is_confirmed AND (locked_until IS NULL OR locked_until <= %s)"
    " RETURNING id, secret, last_used_step"
)
ACCEPT = (
    "UPDATE drf_totp_totpdevice SET last_used_step = %s, use_count = use_count + 1,"
    " failure_count = 0 WHERE id = %s AND last_used_step < %s"
)
SELECT_STATE = f"SELECT {', '.join(STATE)} FROM drf_totp_totpdevice WHERE user_id = %s"


def matches(ciphertext: str, code: Any, step: int) -> bool:
    """Decrypt the secret and compare the code of ``step`` (one TOTP, constant time)."""
    if not isinstance(code, str):
        return False
    secret = FERNET.decrypt(ciphertext.encode("ascii")).decode()
    expected = pyotp.TOTP(secret, interval=PERIOD).generate_otp(step)
    return hmac.compare_digest(expected.encode(), code.encode())


class FloorView(APIView):
    permission_classes = [IsAuthenticated]

    def code(self, request: Request) -> Any:
        return request.data.get("token") if isinstance(request.data, dict) else None


class ValidateFloorView(FloorView):
    """With the ORM: one SELECT of three columns, two conditional UPDATEs."""

    def reserve(self, user_pk: Any) -> tuple[int, str, int] | None:
        """The user's confirmed device, ``(pk, ciphertext, last_used_step)``, once its guess is
        counted (if the row is unlocked), before the code is computed; None if none is."""
        row = (
            FloorDevice.objects.filter(user_id=user_pk, is_confirmed=True)
            .values_list("pk", "secret", "last_used_step")
            .first()
        )
        if row is None:
            return None
        unlocked = Q(locked_until__isnull=True) | Q(locked_until__lte=timezone.now())
        updated = FloorDevice.objects.filter(unlocked, pk=row[0]).update(
            failure_count=F("failure_count") + 1
        )
        return row if updated else None

    def accept(self, pk: int, step: int) -> bool:
        """Record the code of ``step`` if no later one was, and reset the count."""
        updated = FloorDevice.objects.filter(pk=pk, last_used_step__lt=step).update(
            last_used_step=step, use_count=F("use_count") + 1, failure_count=0
        )
        return bool(updated)

    def post(self, request: Request) -> Response:
        row = self.reserve(request.user.pk)
        if row is None:  # no device, or a locked one
            return Response({"ok": False}, status=409)
        pk, ciphertext, last_used_step = row
        step = int(time.time()) // PERIOD
        if step <= last_used_step or not matches(ciphertext, self.code(request), step):
            return Response({"ok": False}, status=400)
        accepted = self.accept(pk, step)
        return Response({"ok": accepted}, status=200 if accepted else 400)


class ValidateFloorSQLView(ValidateFloorView):
    """With raw SQL: two statements, the read and the reservation in one."""

    def reserve(self, user_pk: Any) -> tuple[int, str, int] | None:
        with connection.cursor() as cursor:
            now = connection.ops.adapt_datetimefield_value(timezone.now())
            cursor.execute(READ_AND_RESERVE, [user_pk, now])
            # Every row fetched: SQLite finishes the statement (and its write) once read out.
            rows = cursor.fetchall()
        return rows[0] if rows else None

    def accept(self, pk: int, step: int) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(ACCEPT, [step, pk, step])
            return cursor.rowcount == 1


class OneRowView(FloorView):
    """With the ORM: the columns status reports, of the user's device."""

    def get(self, request: Request) -> Response:
        row = FloorDevice.objects.filter(user_id=request.user.pk).values(*STATE).first()
        return Response(row or {"enabled": False})


class OneRowSQLView(FloorView):
    """With raw SQL."""

    def get(self, request: Request) -> Response:
        with connection.cursor() as cursor:
            cursor.execute(SELECT_STATE, [request.user.pk])
            row = cursor.fetchone()
        return Response(dict(zip(STATE, row, strict=True)) if row else {"enabled": False})
