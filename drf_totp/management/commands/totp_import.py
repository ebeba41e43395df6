from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from drf_totp import importers

from ._user import get_user


class Command(BaseCommand):
    help = (
        "Import confirmed TOTP devices, with their unused recovery codes, from django-otp, "
        "django-allauth (mfa) or drf-totp 0.x. Users who have a drf_totp device, or had one "
        "imported before, are skipped: running it again imports nothing new, and never brings "
        "back a device that was disabled or reset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from",
            dest="sources",
            action="append",
            choices=importers.SOURCES,
            help="A source to import from; repeat for several. Default: every available source.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be imported and skipped, and write nothing.",
        )
        parser.add_argument(
            "--reimport",
            action="append",
            metavar=get_user_model().USERNAME_FIELD.upper(),
            help=(
                "Import this user again although a device was imported for them before (after "
                "a disable or reset: the old secret works again); repeat for several. Only the "
                "users named are imported."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        named = options["reimport"]
        reimport = None if named is None else [get_user(name).pk for name in named]
        reports = importers.import_all(options["sources"], dry_run=dry_run, reimport=reimport)
        for report in reports:
            self.write_report(report)
        total = sum(len(report.imported) for report in reports)
        if dry_run:
            self.stdout.write(f"Dry run: {total} device(s) would be imported; nothing was written.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Imported {total} device(s)."))

    def write_report(self, report: importers.Report) -> None:
        if report.unavailable:
            self.stdout.write(f"{report.source}: nothing to import ({report.unavailable})")
            return
        verb = "would import" if report.dry_run else "imported"
        self.stdout.write(
            f"{report.source}: {verb} {len(report.imported)}, skipped {len(report.skipped)}"
        )
        for item in report.imported:
            notes = f" ({'; '.join(item.notes)})" if item.notes else ""
            self.stdout.write(f"  {verb} {item.user}: {item.origin}{notes}")
        for skip in report.skipped:
            self.stdout.write(f"  skipped {skip.user}: {skip.origin}: {skip.reason}")
