"""The example project's OpenAPI schema is real: ``manage.py spectacular --validate --fail-on-warn``
passes on it, and it serves the schema and Swagger UI, whose files come from its own static files
(drf-spectacular-sidecar), never from a CDN.

Each test runs the example project in a process of its own (its settings are not the suite's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("drf_spectacular")
pytest.importorskip("drf_spectacular_sidecar")

from drf_totp import urls as totp_urls  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example"

# Run in the example project: GET each page with Django's test client; list the page's src and
# href values, each with the file staticfiles finds for it (null when the URL is not a static one
# or no file is found).
SERVE = """
import json, re, sys
import django
django.setup()
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
static = "/" + settings.STATIC_URL.lstrip("/")
pages = {}
for url in sys.argv[1:]:
    response = Client().get(url)
    body = response.content.decode()
    assets = {}
    for ref in re.findall(r'(?:src|href)="([^"]*)"', body):
        path = ref.removeprefix(static)
        assets[ref] = finders.find(path) if path != ref else None
    pages[url] = {
        "status": response.status_code,
        "content_type": response["Content-Type"],
        "body": body,
        "assets": assets,
    }
print(json.dumps(pages))
"""


def run_in_example(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "example_project.settings"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def example_schema(tmp_path_factory) -> dict[str, Any]:
    """``manage.py spectacular --validate --fail-on-warn`` in the example project, as JSON."""
    out = tmp_path_factory.mktemp("example-schema") / "schema.json"
    command = ["spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json"]
    result = run_in_example("manage.py", *command, "--file", str(out))
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def served() -> dict[str, Any]:
    result = run_in_example("-c", SERVE, "/api/schema/", "/api/docs/")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_spectacular_validates_the_example_without_a_warning(example_schema):
    """drf-totp's endpoints, and only them: the demo's own views are not drf-totp's API."""
    expected = sorted("/auth/" + str(p.pattern) for p in totp_urls.urlpatterns)
    assert sorted(example_schema["paths"]) == expected


@pytest.mark.slow
def test_text_fields_that_refuse_blank_have_min_length_1(example_schema):
    """The serializers refuse "" (400 ``blank``); the example's settings leave drf-spectacular's
    ENFORCE_NON_BLANK_FIELDS off, and the schema says so all the same."""
    components = example_schema["components"]["schemas"]
    fields = {
        "Login": ["username", "password"],
        "LoginVerify": ["ticket", "token"],
        "Disable": ["password", "token"],
        "Token": ["token"],
    }
    for component, names in fields.items():
        for name in names:
            assert components[component]["properties"][name]["minLength"] == 1, (component, name)


@pytest.mark.slow
def test_the_example_serves_its_schema(served):
    page = served["/api/schema/"]
    assert page["status"] == 200
    assert page["content_type"].startswith("application/vnd.oai.openapi")
    assert page["body"].startswith("openapi: 3.")
    assert "/auth/otp/login/verify/:" in page["body"]


@pytest.mark.slow
def test_the_example_serves_swagger_ui_from_its_own_static_files(served):
    page = served["/api/docs/"]
    assert page["status"] == 200
    assert page["content_type"].startswith("text/html")
    assert "/api/schema/" in page["body"]
    assets = page["assets"]
    scripts = [ref for ref in assets if ref.endswith("/swagger-ui-bundle.js")]
    assert scripts, assets
    assert "://" not in page["body"], "the page names a remote URL"
    for ref, found in assets.items():
        assert found is not None and Path(found).is_file(), f"{ref}: not a local static file"
