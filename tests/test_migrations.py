"""The migrations match the models."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_have_no_changes_missing_a_migration():
    out = StringIO()

    try:
        call_command("makemigrations", "drf_totp", check=True, dry_run=True, stdout=out)
    except SystemExit:  # --check exits with status 1 when a migration would be written
        pytest.fail(f"drf_totp has model changes without a migration:\n{out.getvalue()}")

    assert "No changes detected" in out.getvalue()
