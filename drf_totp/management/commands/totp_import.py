from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from drf_totp import importers


class Command(BaseCommand):
    help = (
        "Import confirmed TOTP devices from django-otp, django-allauth (mfa) or drf-totp 0.x. "
        "Users who already have a drf_totp device are skipped, so running it again imports "
        "nothing new."
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

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        reports = importers.import_all(options["sources"], dry_run=dry_run)
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
