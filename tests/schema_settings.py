"""The test settings plus drf-spectacular, for the OpenAPI schema of drf-totp's endpoints.

    DJANGO_SETTINGS_MODULE=tests.schema_settings django-admin spectacular --validate --fail-on-warn

The schema covers drf_totp's views only: the test project's own views (tests/views.py) are
fixtures for ``IsOTPVerified``, not part of the package's API, and have no schema of their own.
"""

from __future__ import annotations

from typing import Any

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, REST_FRAMEWORK

INSTALLED_APPS = [*INSTALLED_APPS, "drf_spectacular"]

REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}


def drf_totp_endpoints_only(
    endpoints: list[tuple[Any, ...]], **kwargs: Any
) -> list[tuple[Any, ...]]:
    """drf-spectacular preprocessing hook: keep the endpoints whose view is drf_totp's."""
    return [
        endpoint
        for endpoint in endpoints
        if getattr(endpoint[3], "cls", None) is not None
        and endpoint[3].cls.__module__.startswith("drf_totp.")
    ]


SPECTACULAR_SETTINGS = {
    "TITLE": "drf-totp",
    "DESCRIPTION": "TOTP (RFC 6238) two-factor authentication for Django REST Framework.",
    "VERSION": "1.0.0",
    "PREPROCESSING_HOOKS": ["tests.schema_settings.drf_totp_endpoints_only"],
}
