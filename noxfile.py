"""nox sessions: the test suite over the supported Django and DRF versions, lint, and types.

    nox -l                                  list the sessions
    nox -t oldest newest                    the oldest and the newest supported pair (CI)
    nox -s tests                            the whole matrix
    nox -s "tests(python='3.12', django='5.2', drf='latest')"       one cell
    nox -s lint typecheck
    nox -t oldest -- -k lockout -x          arguments after -- go to pytest

Each Django series is tested with the oldest DRF that runs on it and with the newest DRF 3.x.
The oldest is 3.15, the lower bound in pyproject.toml, except on Django 6.1: DRF before 3.18
does not import there (it needs ``django.utils.cache.cc_delim_re``, which Django 6.1 removed).

Test sessions run on SQLite with the LocMem cache and leave out the browser tests
(``tests/e2e``, marker ``e2e``); ``.ci/run`` covers PostgreSQL, MariaDB and Redis with the
newest versions. The virtualenvs live in ``build/nox``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nox

nox.options.envdir = "build/nox"
# uv makes the virtualenvs and installs into them when it is installed (nox[uv]), else pip.
nox.options.default_venv_backend = "uv|virtualenv"
# Only the interpreters on this machine: nothing is downloaded, a missing one is an error.
nox.options.download_python = "never"
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests", "lint", "typecheck"]

# Django series -> the Python it runs on here (Django 6 needs 3.12+), its requirement, and the
# oldest DRF that runs on it.
DJANGO = {
    "4.2": ("3.10", "Django>=4.2,<5.0", "3.15"),
    "5.2": ("3.12", "Django>=5.2,<5.3", "3.15"),
    "6.x": ("3.13", "Django>=6.0,<7.0", "3.18"),
}
LATEST_DRF = "djangorestframework>=3.15,<4"
OLDEST = ("4.2", "3.15")
NEWEST = ("6.x", "latest")

RUFF = "ruff>=0.17,<0.18"
MYPY = ["mypy>=1.11,<3", "django-stubs>=5.1", "djangorestframework-stubs>=3.15"]


def _drf_requirement(drf: str) -> str:
    if drf == "latest":
        return LATEST_DRF
    major, minor = (int(part) for part in drf.split("."))
    return f"djangorestframework>={drf},<{major}.{minor + 1}"


def _prefer_pyenv_interpreters() -> None:
    """Put pyenv's real interpreters first on PATH, when pyenv is here.

    nox looks interpreters up as ``python3.X`` on PATH. pyenv's shims answer to every such
    name but fail for a version that is installed and not selected ("pyenv: python3.12:
    command not found"), so nox would find no usable interpreter.
    """
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = []
    for minor in sorted({python for python, _, _ in DJANGO.values()} | {"3.12"}):
        patch = re.compile(rf"{re.escape(minor)}\.(\d+)")
        candidates = [
            (int(match[1]), path.parent)
            for path in root.glob(f"{minor}.*/bin/python{minor}")
            if (match := patch.fullmatch(path.parent.parent.name)) and path.is_file()
        ]
        if candidates:
            found.append(str(max(candidates)[1]))
    if found:
        os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


_prefer_pyenv_interpreters()


def _matrix() -> list[nox.param]:
    cells = []
    for django, (python, _, oldest_drf) in DJANGO.items():
        for drf in (oldest_drf, "latest"):
            tags = ["oldest"] if (django, drf) == OLDEST else []
            tags += ["newest"] if (django, drf) == NEWEST else []
            cells.append(nox.param(python, django, drf, tags=tags))
    return cells


@nox.session
@nox.parametrize(["python", "django", "drf"], _matrix())
def tests(session: nox.Session, django: str, drf: str) -> None:
    """The test suite (SQLite, LocMem cache, no browser tests) on one Django x DRF pair."""
    session.install("-e", ".[test]", DJANGO[django][1], _drf_requirement(drf))
    session.run(
        "python",
        "-c",
        "import django, rest_framework as drf; "
        "print('Django', django.__version__, '+ DRF', drf.__version__)",
    )
    session.run(
        "python",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--ignore=tests/e2e",
        "-m",
        "not e2e",
        *session.posargs,
        # Empty: tests/settings.py falls back to SQLite and LocMemCache.
        env={"DATABASE_URL": "", "CACHE_URL": ""},
    )


@nox.session(python="3.12")
def lint(session: nox.Session) -> None:
    """``ruff check`` and ``ruff format --check``; both run, so one report shows all findings."""
    session.install(RUFF)
    failed = []
    for args in (["check", "."], ["format", "--check", "."]):
        try:
            session.run("ruff", *args)
        except nox.command.CommandFailed:
            failed.append("ruff " + " ".join(args))
    if failed:
        session.error("failed: " + ", ".join(failed))


@nox.session(python="3.12")
def typecheck(session: nox.Session) -> None:
    """mypy (settings in pyproject.toml) with the Django and DRF stubs, over the package."""
    session.install("-e", ".[test]", *MYPY)
    session.run("mypy", *session.posargs)
