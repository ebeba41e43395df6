"""The OpenAPI schema (drf-spectacular): valid, warning-free, and complete for every endpoint.

Every endpoint of ``drf_totp.urls`` documents its request body, its 200 body and each error
status it can answer, all errors with the one ``Error`` body.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import URLPattern

pytest.importorskip("drf_spectacular")

from drf_spectacular.generators import SchemaGenerator  # noqa: E402
from drf_spectacular.management.commands.spectacular import Command as SpectacularCommand  # noqa: E402
from drf_spectacular.renderers import OpenApiJsonRenderer  # noqa: E402
from drf_spectacular.settings import patched_settings  # noqa: E402

from drf_totp import urls as totp_urls  # noqa: E402
from tests import schema_settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/auth/"  # where tests/urls.py mounts drf_totp.urls
ERROR_REF = "#/components/schemas/Error"

# The error statuses each endpoint documents: what the view can answer, and nothing else.
AUTHENTICATED = {401, 403}  # DRF answers 403 when the first authenticator sends no challenge
BODY = {413, 415}  # too large, not JSON
DOWN = 503  # the database (or the throttles' cache) failed: any endpoint
CODE = {400, *AUTHENTICATED, 409, *BODY, 429, DOWN}
EXPECTED_ERRORS = {
    "generate": {400, *AUTHENTICATED, 409, *BODY, DOWN},
    "verify": CODE,
    "status": {*AUTHENTICATED, DOWN},
    "validate": CODE,
    "disable": CODE,
    "recovery-codes": CODE,
    "login": {400, 403, *BODY, 429, DOWN},  # 403: knox's token limit
    "login-verify": {400, 403, 409, *BODY, 429, DOWN},
}
REQUEST_BODIES = {
    "generate": "Empty",
    "verify": "Token",
    "validate": "Token",
    "disable": "Disable",
    "recovery-codes": "Token",
    "login": "Login",
    "login-verify": "LoginVerify",
}


def generated_schema() -> dict[str, Any]:
    """The OpenAPI document of drf_totp's endpoints, as plain JSON data (under the schema settings)."""
    with override_settings(REST_FRAMEWORK=schema_settings.REST_FRAMEWORK):
        with patched_settings(schema_settings.SPECTACULAR_SETTINGS):
            schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(schema, renderer_context={}))


def _operation(schema: dict[str, Any], pattern: URLPattern) -> tuple[str, dict[str, Any]]:
    path = PREFIX + str(pattern.pattern)
    assert path in schema["paths"], f"{path} is missing from the schema"
    methods = schema["paths"][path]
    assert len(methods) == 1, f"{path}: one method expected, got {sorted(methods)}"
    ((method, operation),) = methods.items()
    return method, operation


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return generated_schema()


def test_spectacular_validates_without_a_warning(tmp_path):
    out = tmp_path / "schema.yaml"
    with override_settings(REST_FRAMEWORK=schema_settings.REST_FRAMEWORK):
        call_command(
            SpectacularCommand(),
            "--validate",
            "--fail-on-warn",
            "--file",
            str(out),
            "--custom-settings",
            "tests.schema_settings.SPECTACULAR_SETTINGS",
        )
    text = out.read_text()
    assert text.startswith("openapi: 3.")
    for pattern in totp_urls.urlpatterns:
        assert f"{PREFIX}{pattern.pattern}:" in text


def test_spectacular_lang_translates_the_descriptions(tmp_path):
    out = tmp_path / "schema.json"
    with override_settings(REST_FRAMEWORK=schema_settings.REST_FRAMEWORK):
        call_command(
            SpectacularCommand(),
            *("--lang", "de", "--format", "openapi-json", "--file", str(out)),
            *("--custom-settings", "tests.schema_settings.SPECTACULAR_SETTINGS"),
        )
    schema = json.loads(out.read_text(encoding="utf-8"))
    operation = schema["paths"][PREFIX + "otp/validate/"]["post"]
    assert operation["summary"] == "Code prüfen (der zweite Faktor)"
    assert operation["responses"]["409"]["description"] == (
        "Die Anfrage passt nicht zum Stand der Zwei-Faktor-Authentifizierung des Benutzers."
    )
    status = schema["components"]["schemas"]["Status"]["properties"]
    assert status["locked_until"]["description"] == "Vor diesem Zeitpunkt werden Codes abgelehnt."


@pytest.mark.slow
def test_manage_py_spectacular_passes_with_the_schema_settings(tmp_path):
    """The command as CI runs it: its own process, DJANGO_SETTINGS_MODULE=tests.schema_settings."""
    out = tmp_path / "schema.json"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.schema_settings"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = ["spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json"]
    result = subprocess.run(
        [sys.executable, "-m", "django", *command, "--file", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    paths = json.loads(out.read_text())["paths"]
    assert sorted(paths) == sorted(PREFIX + str(p.pattern) for p in totp_urls.urlpatterns)


def test_only_drf_totp_endpoints_are_described(schema):
    assert sorted(schema["paths"]) == sorted(PREFIX + str(p.pattern) for p in totp_urls.urlpatterns)


@pytest.mark.parametrize("pattern", totp_urls.urlpatterns, ids=lambda p: p.name)
def test_every_endpoint_documents_its_200_body(schema, pattern):
    _, operation = _operation(schema, pattern)
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].startswith("#/components/schemas/")
    component = schema["components"]["schemas"][ok["$ref"].rsplit("/", 1)[1]]
    assert component["properties"], f"{pattern.name}: empty 200 body"


@pytest.mark.parametrize("pattern", totp_urls.urlpatterns, ids=lambda p: p.name)
def test_every_endpoint_documents_its_errors_with_the_error_body(schema, pattern):
    _, operation = _operation(schema, pattern)
    errors = {int(status) for status in operation["responses"] if status != "200"}
    assert errors == EXPECTED_ERRORS[pattern.name]
    for status in errors:
        response = operation["responses"][str(status)]
        assert response["description"], f"{pattern.name} {status}: no description"
        assert response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}


@pytest.mark.parametrize("pattern", totp_urls.urlpatterns, ids=lambda p: p.name)
def test_every_endpoint_documents_its_request_body(schema, pattern):
    method, operation = _operation(schema, pattern)
    if method == "get":
        assert "requestBody" not in operation
        return
    body = operation["requestBody"]
    # generate/ takes no body, or {}.
    assert body.get("required", False) is (pattern.name != "generate")
    assert list(body["content"]) == ["application/json"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    assert ref == f"#/components/schemas/{REQUEST_BODIES[pattern.name]}"


def test_request_bodies_refuse_undeclared_fields(schema):
    """The serializers refuse unknown keys (400 unexpected_field); the schema says so."""
    components = schema["components"]["schemas"]
    for name in set(REQUEST_BODIES.values()):
        assert components[name]["additionalProperties"] is False, name
    assert components["Empty"] == {"type": "object", "additionalProperties": False}


def test_the_error_body_is_described(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "code"}
    assert set(error["properties"]) == {"detail", "code", "errors", "retry_after", "locked_until"}
    field_errors = error["properties"]["errors"]["additionalProperties"]
    assert field_errors["items"] == {"$ref": "#/components/schemas/FieldError"}


def test_text_fields_that_refuse_blank_have_min_length_1(schema):
    """``""`` is a 400 ``blank`` for these fields; the schema says minLength 1 although the
    settings leave drf-spectacular's ENFORCE_NON_BLANK_FIELDS off. Response bodies keep none."""
    components = schema["components"]["schemas"]
    for component, name in [
        ("Login", "username"),
        ("Login", "password"),
        ("LoginVerify", "ticket"),
        ("LoginVerify", "token"),
        ("Disable", "password"),
        ("Token", "token"),
    ]:
        assert components[component]["properties"][name]["minLength"] == 1, (component, name)
    assert "minLength" not in components["LoginResponse"]["properties"]["ticket"]
