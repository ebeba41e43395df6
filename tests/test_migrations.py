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


# drf-totp 0.x used the same app label; a database upgraded from it has these rows in
# django_migrations. Our migrations must not be mistaken for them.
LEGACY_APPLIED = {("drf_totp", "0001_initial"), ("drf_totp", "0002_security_hardening")}


@pytest.mark.django_db
def test_a_database_upgraded_from_0x_still_gets_our_tables():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    ours = {key for key in executor.loader.graph.nodes if key[0] == "drf_totp"}
    # As migrate would see a 0.x database: every other app migrated, only 0.x's rows for ours.
    applied = {key for key in executor.loader.graph.nodes if key[0] != "drf_totp"} | LEGACY_APPLIED
    executor.loader.applied_migrations = dict.fromkeys(applied)

    plan = executor.migration_plan(executor.loader.graph.leaf_nodes("drf_totp"))

    assert {(m.app_label, m.name) for m, _backwards in plan} == ours
