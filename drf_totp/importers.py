"""Bring confirmed TOTP devices over from other packages: django-otp, django-allauth's MFA, and
drf-totp 0.x (this package's predecessor under the same name).

One plain function per source, each returning a ``Report`` of what was imported and what was
skipped and why. Importing is idempotent: a user who already has a drf_totp device is skipped,
so a second run imports nothing new. A dry run makes every check and writes nothing.

Every import keeps the device's confirmed state and its last used time step, so no code that
the old package accepted is accepted again; where the old package kept no such step (allauth
remembers used codes only in its cache, drf-totp 0.1 not at all), the step is set to the
current one at import time, and the report says so.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import otp, recovery
from .devices import DEFAULT_NAME
from .models import Algorithm, RecoveryCode, TOTPDevice
from .settings import totp_settings

logger = logging.getLogger("drf_totp")

DJANGO_OTP = "django-otp"
ALLAUTH = "allauth"
DRF_TOTP_0 = "drf-totp-0"
SOURCES = (DJANGO_OTP, ALLAUTH, DRF_TOTP_0)

# What drf_totp checks codes with: the digit counts and the period range that checks.py allows
# for TOTP_DIGITS and TOTP_PERIOD. Devices outside them are skipped, not bent to fit.
SUPPORTED_DIGITS = (6, 8)
PERIOD_RANGE = (15, 120)

# drf-totp 0.x kept its state in these tables (app label "drf_totp", like ours).
LEGACY_AUTH_TABLE = "drf_totp_totpauth"
LEGACY_BACKUP_TABLE = "drf_totp_totpbackupcode"
_LEGACY_FERNET_PREFIX = "fernet$"

ALREADY_ENABLED = "the user already has a drf_totp device"
WEAK_SECRET = (
    "weak secret (under 112 bits): it works, and is flagged weak in status and the admin; "
    "the user should enroll again (generate/ then verify/)"
)


@dataclass(frozen=True)
class Imported:
    user: str
    origin: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    user: str
    origin: str
    reason: str


@dataclass
class Report:
    """What one source gave: devices imported (with notes on what changed), and skips with reasons.

    ``unavailable`` is set when the source could not be read at all (not installed, no tables).
    """

    source: str
    dry_run: bool = False
    unavailable: str | None = None
    imported: list[Imported] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class _Candidate:
    """A confirmed device of another package, in drf_totp's terms, ready to be written."""

    user_id: Any
    user: str
    origin: str
    secret: str
    digits: int
    period: int
    created_at: datetime
    last_used_step: int
    last_used_at: datetime | None = None
    locked_until: datetime | None = None
    notes: list[str] = field(default_factory=list)
    # Plain recovery codes to store hashed, with where they came from (None: the source has none).
    recovery_codes: list[str] | None = None
    recovery_origin: str = ""


class _Writer:
    """Checks and writes candidates for one run, possibly over several sources.

    Remembers the users that got a device in this run, so a dry run reports what a real run
    would do, and a user found in two sources is imported once.
    """

    def __init__(self, *, dry_run: bool, now: datetime) -> None:
        self.dry_run = dry_run
        self.now = now
        self.taken: dict[Any, str] = {}
        # User id -> whether their drf_totp device is confirmed (True wins over a pending one).
        self.existing: dict[Any, bool] = {}
        for user_id, confirmed in TOTPDevice.objects.values_list("user_id", "is_confirmed"):
            self.existing[user_id] = self.existing.get(user_id, False) or confirmed

    def busy(self, user_id: Any) -> str | None:
        """Why ``user_id`` cannot get an imported device, or None if it can."""
        if user_id in self.taken:
            return f"{self.taken[user_id]} was imported for this user"
        if self.existing.get(user_id):
            return ALREADY_ENABLED
        if user_id in self.existing:
            # Not replaced: the user may have just scanned that secret. An admin decides.
            return (
                "the user has a pending drf_totp enrollment; finish it, or reset it "
                "(totp_reset) and import again"
            )
        return None

    def add(self, report: Report, candidate: _Candidate) -> None:
        # Authenticator apps show secrets in groups and any case; pyotp wants neither padding.
        candidate.secret = candidate.secret.replace(" ", "").upper().rstrip("=")
        reason = self.busy(candidate.user_id) or _unsupported(candidate)
        if reason is None and not self.dry_run and not self._write(candidate):
            reason = "the user got a drf_totp device during the import"
        if reason is not None:
            report.skipped.append(Skipped(candidate.user, candidate.origin, reason))
            return
        self.taken[candidate.user_id] = candidate.origin
        notes = list(candidate.notes)
        if otp.is_weak(candidate.secret):
            notes.append(WEAK_SECRET)
        if candidate.recovery_codes is not None:
            notes.extend(self._recovery_notes(report, candidate))
        report.imported.append(Imported(candidate.user, candidate.origin, tuple(notes)))
        if not self.dry_run:
            user_id, origin = candidate.user_id, candidate.origin
            transaction.on_commit(
                lambda: logger.info("totp_imported user=%s origin=%s", user_id, origin)
            )

    def _write(self, candidate: _Candidate) -> bool:
        """Create the device (and its recovery codes) in one transaction; False if one exists."""
        try:
            with transaction.atomic():
                TOTPDevice.objects.create(
                    user_id=candidate.user_id,
                    name=DEFAULT_NAME,
                    secret=candidate.secret,
                    digits=candidate.digits,
                    period=candidate.period,
                    algorithm=Algorithm.SHA1,
                    is_confirmed=True,
                    created_at=candidate.created_at,
                    # No source records when a device was confirmed; its creation stands in.
                    confirmed_at=candidate.created_at,
                    last_used_at=candidate.last_used_at,
                    last_used_step=candidate.last_used_step,
                    locked_until=candidate.locked_until,
                )
                usable, _ = _split_codes(candidate.recovery_codes or [])
                RecoveryCode.objects.bulk_create(
                    RecoveryCode(
                        user_id=candidate.user_id,
                        digest=recovery.digests(code)[0],
                        created_at=self.now,
                    )
                    for code in usable
                )
        except IntegrityError:
            return False
        return True

    def _recovery_notes(self, report: Report, candidate: _Candidate) -> list[str]:
        usable, unusable = _split_codes(candidate.recovery_codes or [])
        if unusable:
            length = recovery.GROUPS * recovery.GROUP_LENGTH
            report.skipped.append(
                Skipped(
                    candidate.user,
                    candidate.recovery_origin,
                    f"{unusable} unused recovery code(s) in a form drf_totp does not accept "
                    f"(it takes {length} characters of its own alphabet); the user should "
                    "generate new ones",
                )
            )
        return [f"{len(usable)} unused recovery code(s) imported"] if usable else []


def _split_codes(codes: Iterable[str]) -> tuple[list[str], int]:
    """The distinct codes drf_totp would accept, normalized; and how many it would not."""
    usable: list[str] = []
    unusable = 0
    for raw in codes:
        code = recovery.normalize(raw)
        if code is None:
            unusable += 1
        elif code not in usable:
            usable.append(code)
    return usable, unusable


def _unsupported(candidate: _Candidate) -> str | None:
    """Why drf_totp cannot check this device's codes, or None."""
    if candidate.digits not in SUPPORTED_DIGITS:
        return f"{candidate.digits}-digit codes are not supported (only 6 or 8)"
    low, high = PERIOD_RANGE
    if not low <= candidate.period <= high:
        return f"a period of {candidate.period}s is not supported (only {low} to {high}s)"
    if not candidate.secret:
        return "the device has no secret"
    try:
        key = base64.b32decode(_padded(candidate.secret), casefold=True)
    except (binascii.Error, ValueError):
        return "the secret is not valid base32"
    if not key:
        return "the device has no secret"
    return None


def _padded(secret: str) -> str:
    return secret + "=" * (-len(secret) % 8)


def _current_step(now: datetime, period: int) -> int:
    return int(now.timestamp()) // period


def _username(user: Any) -> str:
    return user.get_username() if user is not None else "?"


# --- django-otp --------------------------------------------------------------------------


def import_django_otp(*, dry_run: bool = False, now: datetime | None = None) -> Report:
    """Import confirmed ``django_otp.plugins.otp_totp`` devices, one per user.

    The hex key becomes base32, ``last_t`` the last used step. A device with ``t0`` other than 0
    is skipped (drf_totp counts steps from the Unix epoch and keeps no offset); ``drift`` and
    ``tolerance`` are not kept (``TOTP_VALID_WINDOW`` applies). If ``otp_static`` is installed,
    the user's static tokens become recovery codes where drf_totp accepts their form.
    """
    return _run([_from_django_otp], dry_run, now)[0]


def _from_django_otp(writer: _Writer) -> Report:
    report = Report(DJANGO_OTP, dry_run=writer.dry_run)
    if not apps.is_installed("django_otp.plugins.otp_totp"):
        report.unavailable = "django_otp.plugins.otp_totp is not installed"
        return report
    model = apps.get_model("otp_totp", "TOTPDevice")
    if model._meta.db_table not in connection.introspection.table_names():
        report.unavailable = f"no {model._meta.db_table} table (django-otp not migrated)"
        return report
    # Per user, the confirmed device used last comes first: it is the one imported.
    rows = model.objects.select_related("user").order_by("user_id", "-confirmed", "-last_t", "pk")
    static = _django_otp_static_tokens()
    for device in rows:
        origin = f'django-otp TOTPDevice #{device.pk} "{device.name}"'
        user = _username(device.user)
        if not device.confirmed:
            report.skipped.append(
                Skipped(user, origin, "not confirmed (enrollment never finished)")
            )
            continue
        if device.t0 != 0:
            reason = (
                f"t0 is {device.t0}: its steps count from t0, drf_totp's from the Unix epoch, "
                "and drf_totp keeps no offset"
            )
            report.skipped.append(Skipped(user, origin, reason))
            continue
        try:
            key = bytes.fromhex(device.key)
        except ValueError:
            report.skipped.append(Skipped(user, origin, "the key is not valid hex"))
            continue
        candidate = _Candidate(
            user_id=device.user_id,
            user=user,
            origin=origin,
            secret=base64.b32encode(key).decode("ascii"),
            digits=device.digits,
            period=device.step,
            created_at=getattr(device, "created_at", None) or writer.now,
            # -1: never used. Its steps are counted from the epoch (t0 is 0) and include the
            # drift, as drf_totp's steps do: the same number names the same code.
            last_used_step=max(device.last_t, 0),
            last_used_at=getattr(device, "last_used_at", None),
        )
        if device.drift:
            candidate.notes.append(f"drift of {device.drift} step(s) not kept")
        if device.tolerance != totp_settings.VALID_WINDOW:
            candidate.notes.append(
                f"tolerance {device.tolerance} not kept (TOTP_VALID_WINDOW "
                f"{totp_settings.VALID_WINDOW} applies)"
            )
        if static is not None and device.user_id in static:
            candidate.recovery_codes, candidate.recovery_origin = static[device.user_id]
        writer.add(report, candidate)
    return report


def _django_otp_static_tokens() -> dict[Any, tuple[list[str], str]] | None:
    """Per user id, the tokens of confirmed ``otp_static`` devices (kept in the clear) and
    where they come from; None if ``otp_static`` is not installed."""
    if not apps.is_installed("django_otp.plugins.otp_static"):
        return None
    model = apps.get_model("otp_static", "StaticToken")
    rows = model.objects.filter(device__confirmed=True).order_by("device_id", "pk")
    codes: dict[Any, list[str]] = {}
    origins: dict[Any, dict[str, None]] = {}
    for user_id, device_id, token in rows.values_list("device__user_id", "device_id", "token"):
        codes.setdefault(user_id, []).append(token)
        origins.setdefault(user_id, {})[f"django-otp StaticDevice #{device_id}"] = None
    return {user_id: (codes[user_id], ", ".join(origins[user_id])) for user_id in codes}


# --- django-allauth ----------------------------------------------------------------------


def import_allauth(*, dry_run: bool = False, now: datetime | None = None) -> Report:
    """Import allauth.mfa TOTP authenticators (and their recovery codes, where drf_totp accepts them).

    The secret is decrypted with allauth's MFA adapter; digits and period come from
    ``MFA_TOTP_DIGITS`` / ``MFA_TOTP_PERIOD``. allauth remembers used codes only in its cache, so
    the last used step is set to the current step (plus ``MFA_TOTP_TOLERANCE``) at import time.
    """
    return _run([_from_allauth], dry_run, now)[0]


def _from_allauth(writer: _Writer) -> Report:
    report = Report(ALLAUTH, dry_run=writer.dry_run)
    if not apps.is_installed("allauth.mfa"):
        report.unavailable = "allauth.mfa is not installed"
        return report
    from allauth.mfa import app_settings as mfa_settings
    from allauth.mfa.adapter import get_adapter
    from allauth.mfa.models import Authenticator

    if Authenticator._meta.db_table not in connection.introspection.table_names():
        report.unavailable = f"no {Authenticator._meta.db_table} table (allauth not migrated)"
        return report
    adapter = get_adapter()
    digits, period = mfa_settings.TOTP_DIGITS, mfa_settings.TOTP_PERIOD
    # Before MFA_TOTP_TOLERANCE existed (allauth 65.x), only the current step was accepted.
    tolerance = getattr(mfa_settings, "TOTP_TOLERANCE", 0)
    kinds = Authenticator.Type
    rows = Authenticator.objects.select_related("user").order_by("user_id", "pk")
    by_user: dict[Any, dict[str, list[Any]]] = {}
    for row in rows:
        by_user.setdefault(row.user_id, {}).setdefault(row.type, []).append(row)
    for found in by_user.values():
        totp = found.pop(kinds.TOTP, [])
        codes = found.pop(kinds.RECOVERY_CODES, [])
        for other_type, others in found.items():
            for other in others:
                report.skipped.append(
                    Skipped(
                        _username(other.user),
                        f"allauth {other_type} authenticator #{other.pk}",
                        "drf_totp imports TOTP only",
                    )
                )
        for row in codes if not totp else []:
            report.skipped.append(
                Skipped(
                    _username(row.user),
                    f"allauth recovery codes #{row.pk}",
                    "the user has no allauth TOTP authenticator to go with them",
                )
            )
        for row in totp:
            candidate = _allauth_candidate(
                row, adapter, digits, period, tolerance, writer.now, report
            )
            if candidate is None:
                continue
            if codes:
                candidate.recovery_origin = f"allauth recovery codes #{codes[0].pk}"
                candidate.recovery_codes = _allauth_unused_codes(codes[0], report, candidate)
            writer.add(report, candidate)
    return report


def _allauth_candidate(
    row: Any, adapter: Any, digits: int, period: int, tolerance: int, now: datetime, report: Report
) -> _Candidate | None:
    user, origin = _username(row.user), f"allauth TOTP authenticator #{row.pk}"
    try:
        secret = adapter.decrypt(row.data["secret"])
    except Exception as exc:  # an adapter may raise anything on a bad or foreign ciphertext
        reason = f"the secret could not be decrypted by the MFA adapter ({type(exc).__name__})"
        report.skipped.append(Skipped(user, origin, reason))
        return None
    step = _current_step(now, period) + max(tolerance, 0)
    candidate = _Candidate(
        user_id=row.user_id,
        user=user,
        origin=origin,
        secret=str(secret),
        digits=digits,
        period=period,
        created_at=row.created_at or now,
        last_used_step=step,
        last_used_at=row.last_used_at,
    )
    candidate.notes.append(
        "allauth keeps used codes only in its cache: last used step set to the current step"
        + (f" plus its tolerance ({tolerance})" if tolerance > 0 else "")
        + ", so codes from before the import are refused"
    )
    if tolerance != totp_settings.VALID_WINDOW:
        candidate.notes.append(
            f"MFA_TOTP_TOLERANCE {tolerance} not kept (TOTP_VALID_WINDOW "
            f"{totp_settings.VALID_WINDOW} applies)"
        )
    return candidate


def _allauth_unused_codes(row: Any, report: Report, candidate: _Candidate) -> list[str] | None:
    """allauth's unused recovery codes, in the clear: it derives them from an encrypted seed
    (or keeps migrated ones encrypted), so its own code recovers them."""
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    try:
        return list(RecoveryCodes(row).get_unused_codes())
    except Exception as exc:  # a bad seed or ciphertext must not stop the TOTP import
        reason = f"the codes could not be recovered ({type(exc).__name__})"
        report.skipped.append(Skipped(candidate.user, candidate.recovery_origin, reason))
        return None


# --- drf-totp 0.x ------------------------------------------------------------------------


def import_drf_totp_0(*, dry_run: bool = False, now: datetime | None = None) -> Report:
    """Import verified rows of drf-totp 0.x's ``drf_totp_totpauth`` table, read with raw SQL.

    0.2 kept the last used step, digits and period from ``TOTP_DIGITS`` / ``TOTP_PERIOD`` (the
    same settings as ours), and could encrypt secrets with ``TOTP_ENCRYPTION_KEY``; 0.1 used
    6 digits and 30 seconds and kept no step (set to the current step at import). Backup codes
    were stored as keyed hashes and cannot be converted.
    """
    return _run([_from_drf_totp_0], dry_run, now)[0]


def _from_drf_totp_0(writer: _Writer) -> Report:
    report = Report(DRF_TOTP_0, dry_run=writer.dry_run)
    tables = set(connection.introspection.table_names())
    if LEGACY_AUTH_TABLE not in tables:
        report.unavailable = "no drf-totp 0.x tables"
        return report
    rows, has_step = _legacy_rows()
    unused_backup = _legacy_unused_backup_codes() if LEGACY_BACKUP_TABLE in tables else {}
    user_model = get_user_model()
    users = user_model._default_manager.in_bulk({row["user_id"] for row in rows})
    for row in rows:
        user = users.get(row["user_id"])
        name = _username(user)
        origin = f"drf-totp 0.x TOTPAuth #{row['id']}"
        if user is None:
            report.skipped.append(Skipped(name, origin, f"no user with id {row['user_id']}"))
            continue
        if not row["otp_verified"]:
            report.skipped.append(
                Skipped(name, origin, "not confirmed (enrollment never finished)")
            )
            continue
        backup = unused_backup.get(row["id"], 0)
        if backup:
            report.skipped.append(
                Skipped(
                    name,
                    f"drf-totp 0.x backup codes of TOTPAuth #{row['id']}",
                    f"{backup} unused backup code(s) are stored as keyed hashes, which cannot be "
                    "converted; the user should generate new recovery codes",
                )
            )
        secret, reason = _legacy_secret(row["otp_base32"])
        if secret is None:
            report.skipped.append(Skipped(name, origin, reason))
            continue
        # 0.2 read digits and period from TOTP_DIGITS and TOTP_PERIOD; 0.1 used pyotp's defaults.
        digits, period = (totp_settings.DIGITS, totp_settings.PERIOD) if has_step else (6, 30)
        candidate = _Candidate(
            user_id=row["user_id"],
            user=name,
            origin=origin,
            secret=secret,
            digits=digits,
            period=period,
            created_at=_aware(row["created_at"]) or writer.now,
            last_used_step=_current_step(writer.now, period),
            last_used_at=_aware(row.get("last_used_at")),
        )
        if row.get("last_used_step") is not None:
            candidate.last_used_step = row["last_used_step"]
        else:
            candidate.notes.append(
                "drf-totp 0.x recorded no last used step: set to the current step, so codes "
                "from before the import are refused"
            )
        locked_until = _aware(row.get("locked_until"))
        if locked_until is not None and locked_until > writer.now:
            candidate.locked_until = locked_until
            candidate.notes.append(f"locked until {locked_until.isoformat()}, as it was")
        writer.add(report, candidate)
    return report


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


def _legacy_unused_backup_codes() -> dict[Any, int]:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote('auth_id')}, COUNT(*) FROM {quote(LEGACY_BACKUP_TABLE)} "
            f"WHERE {quote('used_at')} IS NULL GROUP BY {quote('auth_id')}"
        )
        return dict(cursor.fetchall())


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


# --- Running -------------------------------------------------------------------------------

_READERS: dict[str, Callable[[_Writer], Report]] = {
    DJANGO_OTP: _from_django_otp,
    ALLAUTH: _from_allauth,
    DRF_TOTP_0: _from_drf_totp_0,
}


def import_all(
    sources: Iterable[str] | None = None, *, dry_run: bool = False, now: datetime | None = None
) -> list[Report]:
    """Import from ``sources`` (names from ``SOURCES``; all of them if None), in that order.

    A user found in several sources gets the device of the first; the others are skipped.
    """
    names = list(SOURCES if sources is None else sources)
    unknown = [name for name in names if name not in _READERS]
    if unknown:
        raise ValueError(
            f"Unknown source(s): {', '.join(unknown)}; choose from {', '.join(SOURCES)}."
        )
    return _run([_READERS[name] for name in names], dry_run, now)


def _run(
    readers: list[Callable[[_Writer], Report]], dry_run: bool, now: datetime | None
) -> list[Report]:
    now = now or timezone.now()
    with transaction.atomic():
        writer = _Writer(dry_run=dry_run, now=now)
        return [read(writer) for read in readers]
