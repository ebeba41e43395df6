"""The README's examples are real: its Python runs, its JSON parses, its settings table is true."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from drf_totp.settings import DEFAULTS
from drf_totp.throttling import DEFAULT_RATES

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README) if lang == language]


@pytest.mark.parametrize("code", blocks("python"))
def test_every_python_example_runs(code):
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})


@pytest.mark.parametrize("text", blocks("json"))
def test_every_json_example_parses(text):
    lines = text.strip().splitlines()
    if re.fullmatch(r"\d{3} [A-Za-z ]+", lines[0]):  # a status line above the body
        lines = lines[1:]
    json.loads("\n".join(lines).replace('"..."', '"x"'))


def test_the_settings_table_lists_every_setting_with_its_default():
    rows = dict(re.findall(r"^\| `(TOTP_\w+)` \| `([^`]*)` \|", README, re.M))

    assert set(rows) == set(DEFAULTS)
    for name, default in rows.items():
        assert ast.literal_eval(default) == DEFAULTS[name], name


def test_the_throttle_example_shows_the_default_rates():
    [example] = [code for code in blocks("python") if "DEFAULT_THROTTLE_RATES" in code]
    namespace: dict = {}
    exec(example, namespace)

    assert namespace["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"] == DEFAULT_RATES
