"""What every source shares: the report, the candidate device in drf_totp's terms, and the
writer that checks candidates and writes them with their recovery codes and a record of the
import (kept when the device is deleted, so an import never brings a revoked secret back).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import otp, recovery
from ..devices import DEFAULT_NAME
from ..models import Algorithm, ImportRecord, RecoveryCode, TOTPDevice

logger = logging.getLogger("drf_totp")

# What drf_totp checks codes with: the digit counts and the period range that checks.py allows
# for TOTP_DIGITS and TOTP_PERIOD. Devices outside them are skipped, not bent to fit.
SUPPORTED_DIGITS = (6, 8)
PERIOD_RANGE = (15, 120)

ALREADY_ENABLED = "the user already has a drf_totp device"


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
class Codes:
    """A user's unused recovery codes in another package, as the digests drf_totp stores."""

    origin: str
    format: str
    digests: list[str] = field(default_factory=list)
    # Why some codes (or all) could not be brought over, one line each.
    problems: list[str] = field(default_factory=list)

    @classmethod
    def plain(cls, origin: str, format: str, codes: Iterable[str]) -> Codes:
        """From codes the package kept or derives in the clear."""
        found = cls(origin, format)
        refused = 0
        for code in codes:
            digest = recovery.imported_digest(format, code)
            if digest is None:
                refused += 1
            elif digest not in found.digests:
                found.digests.append(digest)
        if refused:
            found.problems.append(
                f"{refused} unused recovery code(s) not imported: empty, longer than "
                f"{recovery.PLAIN_MAX_LENGTH} characters, not ASCII, or a 6-digit number (which "
                "drf_totp takes for an authenticator code); the user should generate new ones"
            )
        return found


@dataclass
class Candidate:
    """A confirmed device of another package, in drf_totp's terms, ready to be written."""

    user_id: Any
    user: str
    origin: str
    source_id: str  # the device's primary key in its package, recorded with the import
    key: bytes
    digits: int
    period: int
    created_at: datetime
    last_used_step: int
    last_used_at: datetime | None = None
    locked_until: datetime | None = None
    notes: list[str] = field(default_factory=list)
    codes: Codes | None = None


def base32_key(secret: str) -> bytes | None:
    """The key of a base32 secret as authenticator apps take it (any case, spaces, padding or
    not), or None if it is not base32."""
    text = secret.replace(" ", "").upper().rstrip("=")
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None


def username(user: Any) -> str:
    return user.get_username() if user is not None else "?"


class Writer:
    """Checks and writes candidates for one run, possibly over several sources.

    Remembers the users that got a device in this run, so a dry run reports what a real run
    would do, and a user found in two sources is imported once. With ``reimport`` (user ids),
    only those users are imported, even if a device was imported for them before.
    """

    def __init__(
        self, *, dry_run: bool, now: datetime, reimport: Collection[Any] | None = None
    ) -> None:
        self.dry_run = dry_run
        self.now = now
        self.reimport = None if reimport is None else set(reimport)
        self.taken: dict[Any, str] = {}
        # User id -> whether their drf_totp device is confirmed (True wins over a pending one).
        self.existing: dict[Any, bool] = {}
        for user_id, confirmed in TOTPDevice.objects.values_list("user_id", "is_confirmed"):
            self.existing[user_id] = self.existing.get(user_id, False) or confirmed
        # User id -> the last import of a device for them: "source #id on date".
        self.imported_before: dict[Any, str] = {}
        records = ImportRecord.objects.order_by("imported_at", "pk")
        for user_id, source, source_id, at in records.values_list(
            "user_id", "source", "source_id", "imported_at"
        ):
            self.imported_before[user_id] = f"{source} #{source_id} on {at:%Y-%m-%d}"

    def busy(self, user_id: Any, user: str) -> str | None:
        """Why ``user_id`` cannot get an imported device, or None if it can."""
        if user_id in self.taken:
            return f"{self.taken[user_id]} was imported for this user"
        if self.existing.get(user_id):
            return ALREADY_ENABLED
        if user_id in self.existing:
            # Not replaced: the user may have just scanned that secret.
            return "the user has a pending drf_totp enrollment; the old device is not put over it"
        if user_id in self.imported_before and self.reimport is None:
            # The device imported then may have been disabled or reset since: never revived.
            return (
                f"a device was imported for this user before ({self.imported_before[user_id]}); "
                f"to import again on purpose: totp_import --reimport {user}"
            )
        return None

    def offer(self, report: Report, user_id: Any, found: Candidate | Skipped) -> None:
        """Record what a source found for ``user_id``: a device to import, or a skip."""
        if self.reimport is not None and user_id not in self.reimport:
            return
        if isinstance(found, Skipped):
            report.skipped.append(found)
        else:
            self._add(report, found)

    def _add(self, report: Report, candidate: Candidate) -> None:
        reason = self.busy(candidate.user_id, candidate.user) or _unsupported(candidate)
        if reason is None and not self.dry_run and not self._write(report.source, candidate):
            reason = "the user got a drf_totp device, or was imported, during the import"
        if reason is not None:
            report.skipped.append(Skipped(candidate.user, candidate.origin, reason))
            return
        self.taken[candidate.user_id] = candidate.origin
        report.imported.append(
            Imported(candidate.user, candidate.origin, tuple(self._notes(report, candidate)))
        )
        if not self.dry_run:
            user_id, origin = candidate.user_id, candidate.origin
            transaction.on_commit(
                lambda: logger.info("totp_imported user=%s origin=%s", user_id, origin)
            )

    def _notes(self, report: Report, candidate: Candidate) -> list[str]:
        notes = []
        if otp.is_weak(base64.b32encode(candidate.key).decode("ascii")):  # the rule status flags
            notes.append(f"weak secret: {len(candidate.key) * 8} bits")
        notes += candidate.notes
        if candidate.user_id in self.imported_before:
            notes.append(
                f"imported again; imported before: {self.imported_before[candidate.user_id]}"
            )
        codes = candidate.codes
        if codes is not None:
            if codes.digests:
                notes.append(f"{len(codes.digests)} unused recovery code(s) imported")
            for problem in codes.problems:
                report.skipped.append(Skipped(candidate.user, codes.origin, problem))
        return notes

    def _write(self, source: str, candidate: Candidate) -> bool:
        """Create the device, its recovery codes and the record of the import in one
        transaction; False if the user got a device (or the device was imported) meanwhile."""
        codes = candidate.codes
        try:
            with transaction.atomic():
                TOTPDevice.objects.create(
                    user_id=candidate.user_id,
                    name=DEFAULT_NAME,
                    secret=base64.b32encode(candidate.key).decode("ascii").rstrip("="),
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
                # Codes left from an earlier drf_totp device of this user go: a set replaces.
                RecoveryCode.objects.filter(user_id=candidate.user_id).delete()
                if codes is not None:
                    RecoveryCode.objects.bulk_create(
                        RecoveryCode(
                            user_id=candidate.user_id,
                            digest=digest,
                            format=codes.format,
                            created_at=self.now,
                        )
                        for digest in codes.digests
                    )
                ImportRecord.objects.update_or_create(
                    source=source,
                    source_id=candidate.source_id,
                    defaults={"user_id": candidate.user_id, "imported_at": self.now},
                )
        except IntegrityError:
            return False
        return True


def _unsupported(candidate: Candidate) -> str | None:
    """Why drf_totp cannot check this device's codes, or None."""
    if candidate.digits not in SUPPORTED_DIGITS:
        return f"{candidate.digits}-digit codes are not supported (only 6 or 8)"
    low, high = PERIOD_RANGE
    if not low <= candidate.period <= high:
        return f"a period of {candidate.period}s is not supported (only {low} to {high}s)"
    if not candidate.key:
        return "the device has no secret"
    return None


def current_step(now: datetime, period: int) -> int:
    return int(now.timestamp()) // period


Reader = Callable[[Writer], Report]


def run(
    readers: Iterable[Reader],
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    reimport: Collection[Any] | None = None,
) -> list[Report]:
    """Run ``readers`` in order in one transaction, with one writer."""
    with transaction.atomic():
        writer = Writer(dry_run=dry_run, now=now or timezone.now(), reimport=reimport)
        return [read(writer) for read in readers]
