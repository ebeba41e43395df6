from __future__ import annotations

import pytest

from tests.importers.sources import SECRET, LegacyTables, allauth_totp, now_step, otp_device


@pytest.fixture(autouse=True)
def _frozen(clock):
    """Every importer test runs at a frozen time (codes and steps are computed from it)."""


@pytest.fixture
def encrypting_adapter(settings):
    settings.MFA_ADAPTER = "tests.importers.sources.FernetMFAAdapter"


@pytest.fixture
def legacy(request, transactional_db):
    """drf-totp 0.2's tables; ``@pytest.mark.parametrize("legacy", ["0.1"], indirect=True)``
    for 0.1's. DDL commits on MySQL, so these tests run outside a test transaction."""
    tables = LegacyTables(getattr(request, "param", "0.2"))
    yield tables
    tables.drop()


@pytest.fixture
def everywhere(legacy, user, other_user, django_user_model):
    """A user in each source, and one (alice) in all three."""
    carol = django_user_model.objects.create_user(username="carol", password="x")
    otp_device(user, last_t=now_step() - 1)
    allauth_totp.TOTP.activate(user, SECRET)
    allauth_totp.TOTP.activate(other_user, SECRET)
    legacy.auth(user, last_used_step=now_step() - 1)
    legacy.auth(carol, last_used_step=now_step() - 1)
    return legacy
