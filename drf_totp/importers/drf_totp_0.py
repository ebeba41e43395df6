"""drf-totp 0.x, this package's predecessor under the same name: its tables, read with SQL (its
models are gone), and 0.2's backup codes, kept as the digests 0.2 wrote."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..models import RecoveryCode
from ..settings import totp_settings
from .base import Candidate, Codes, Report, Skipped, Writer, base32_key, current_step, run, username

DRF_TOTP_0 = "drf-totp-0"

# drf-totp 0.x kept its state in these tables (app label "drf_totp", like ours).
LEGACY_AUTH_TABLE = "drf_totp_totpauth"
LEGACY_BACKUP_TABLE = "drf_totp_totpbackupcode"
_LEGACY_FERNET_PREFIX = "fernet$"
# 0.2's backup code hash: its prefix, then the hex HMAC-SHA256 that RecoveryCode keeps.
_LEGACY_CODE_HASH = re.compile(r"hmac_sha256\$([0-9a-f]{64})")


def import_drf_totp_0(
    *, dry_run: bool = False, now: datetime | None = None, reimport: Collection[Any] | None = None
) -> Report:
    """Import verified rows of drf-totp 0.x's ``drf_totp_totpauth`` table, read with raw SQL.

    0.2 kept the last used step, digits and period from ``TOTP_DIGITS`` / ``TOTP_PERIOD`` (the
    same settings as ours), and could encrypt secrets with ``TOTP_ENCRYPTION_KEY``; 0.1 used
    6 digits and 30 seconds and kept no step (set to the current step at import). 0.2's unused
    backup codes come along as the keyed hashes 0.2 stored (HMAC-SHA256 keyed with
    ``SECRET_KEY``, which the project still has), and are checked the way 0.2 checked them.
    """
    return run([read], dry_run=dry_run, now=now, reimport=reimport)[0]


def read(writer: Writer) -> Report:
    report = Report(DRF_TOTP_0, dry_run=writer.dry_run)
    tables = set(connection.introspection.table_names())
    if LEGACY_AUTH_TABLE not in tables:
        report.unavailable = "no drf-totp 0.x tables"
        return report
    rows, is_0_2 = _legacy_rows()
    backup = _unused_backup_codes() if LEGACY_BACKUP_TABLE in tables else {}
    users = get_user_model()._default_manager.in_bulk({row["user_id"] for row in rows})
    for row in rows:
        codes = backup.get(row["id"])
        found = _candidate(row, users.get(row["user_id"]), codes, is_0_2, writer.now)
        writer.offer(report, row["user_id"], found)
    return report


def _candidate(
    row: dict[str, Any], user: Any, codes: Codes | None, is_0_2: bool, now: datetime
) -> Candidate | Skipped:
    name, origin = username(user), f"drf-totp 0.x TOTPAuth #{row['id']}"
    if user is None:
        return Skipped(name, origin, f"no user with id {row['user_id']}")
    if not row["otp_verified"]:
        return Skipped(name, origin, "not confirmed (enrollment never finished)")
    secret, reason = _legacy_secret(row["otp_base32"])
    key = None if secret is None else base32_key(secret)
    if key is None:
        return Skipped(name, origin, reason or "the secret is not valid base32")
    # 0.2 read digits and period from TOTP_DIGITS and TOTP_PERIOD; 0.1 used pyotp's defaults.
    digits, period = (totp_settings.DIGITS, totp_settings.PERIOD) if is_0_2 else (6, 30)
    candidate = Candidate(
        user_id=row["user_id"],
        user=name,
        origin=origin,
        source_id=str(row["id"]),
        key=key,
        digits=digits,
        period=period,
        created_at=_aware(row["created_at"]) or now,
        last_used_step=current_step(now, period),
        last_used_at=_aware(row.get("last_used_at")),
        codes=codes,
    )
    if row.get("last_used_step") is not None:
        candidate.last_used_step = row["last_used_step"]
    else:
        candidate.notes.append(
            "drf-totp 0.x recorded no last used step: set to the current step, so codes "
            "from before the import are refused"
        )
    locked_until = _aware(row.get("locked_until"))
    if locked_until is not None and locked_until > now:
        candidate.locked_until = locked_until
        candidate.notes.append(f"locked until {locked_until.isoformat()}, as it was")
    return candidate


def _legacy_rows() -> tuple[list[dict[str, Any]], bool]:
    """The rows of drf-totp 0.x's table, as dicts; and whether it is the 0.2 schema."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        present = {
            column.name
            for column in connection.introspection.get_table_description(cursor, LEGACY_AUTH_TABLE)
        }
        wanted = ["id", "user_id", "otp_verified", "otp_base32", "created_at"]
        wanted += [c for c in ("last_used_step", "last_used_at", "locked_until") if c in present]
        cursor.execute(
            f"SELECT {', '.join(quote(c) for c in wanted)} FROM {quote(LEGACY_AUTH_TABLE)} "
            f"ORDER BY {quote('id')}"
        )
        rows = [dict(zip(wanted, values, strict=True)) for values in cursor.fetchall()]
    return rows, "last_used_step" in present


def _unused_backup_codes() -> dict[Any, Codes]:
    """Per 0.2 TOTPAuth id, its unused backup codes."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote('auth_id')}, {quote('code_hash')} FROM {quote(LEGACY_BACKUP_TABLE)} "
            f"WHERE {quote('used_at')} IS NULL ORDER BY {quote('id')}"
        )
        hashes: dict[Any, list[str]] = {}
        for auth_id, code_hash in cursor.fetchall():
            hashes.setdefault(auth_id, []).append(code_hash)
    return {auth_id: _backup_codes(auth_id, found) for auth_id, found in hashes.items()}


def _backup_codes(auth_id: Any, hashes: list[str]) -> Codes:
    codes = Codes(
        f"drf-totp 0.2 backup codes of TOTPAuth #{auth_id}", str(RecoveryCode.Format.DRF_TOTP_0_2)
    )
    refused = 0
    for code_hash in hashes:
        match = _LEGACY_CODE_HASH.fullmatch(code_hash or "")
        if match is None:
            refused += 1
        elif match[1] not in codes.digests:
            codes.digests.append(match[1])
    if refused:
        codes.problems.append(
            f"{refused} backup code hash(es) not in the form drf-totp 0.2 wrote "
            '("hmac_sha256$" and 64 hex digits); the user should generate new recovery codes'
        )
    return codes


def _legacy_secret(stored: str | None) -> tuple[str | None, str]:
    """The plaintext secret of a 0.x row (decrypted if 0.2 encrypted it), or None and why."""
    if not stored:
        return None, "the row has no secret"
    if not stored.startswith(_LEGACY_FERNET_PREFIX):
        return stored, ""
    from cryptography.fernet import Fernet, InvalidToken, MultiFernet

    configured = getattr(settings, "TOTP_ENCRYPTION_KEY", None)
    keys = [configured] if isinstance(configured, (str, bytes)) else list(configured or [])
    # Also our own explicit keys, in case the old key was moved to TOTP_ENCRYPTION_KEYS.
    keys += list(totp_settings.ENCRYPTION_KEYS or [])
    if not keys:
        return None, "the secret is encrypted and TOTP_ENCRYPTION_KEY (0.x's key) is not set"
    try:
        fernet = MultiFernet([Fernet(key) for key in keys])
        token = stored[len(_LEGACY_FERNET_PREFIX) :].encode("ascii")
        return fernet.decrypt(token).decode("utf-8"), ""
    except (InvalidToken, ValueError, TypeError):
        return None, "the secret could not be decrypted with TOTP_ENCRYPTION_KEY"


def _aware(value: Any) -> datetime | None:
    """A datetime read with raw SQL, as the ORM would return it (SQLite gives strings, MySQL
    naive UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
        if value is None:
            return None
    if settings.USE_TZ and timezone.is_naive(value):
        value = timezone.make_aware(value, dt_timezone.utc)
    return value
