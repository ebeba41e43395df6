"""Fixtures of the end-to-end tests: the example project served as ``make demo`` serves it (on a
free port, with its own SQLite file), headless Chromium driven by Playwright, and screenshots
under build/screenshots/.

Without Playwright or /usr/bin/chromium the tests are skipped, with the reason; with
``DRF_TOTP_E2E=1`` (CI) they fail instead.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example"
SCREENSHOTS = ROOT / "build" / "screenshots"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}

REQUIRED = os.environ.get("DRF_TOTP_E2E") == "1"
SERVER_START_SECONDS = 30


def missing_requirement() -> str | None:
    """Why the end-to-end tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (pip install -e '.[e2e]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (Debian: apt-get install chromium)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "shots(prefix): name the test's screenshots build/screenshots/<prefix>-*.png"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Keep each phase's report on the test, so fixtures can tell that the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


# --- The browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    reason = missing_requirement()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"DRF_TOTP_E2E=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def open_browser(playwright, tmp_path: Path, request: pytest.FixtureRequest):
    """``open_browser(**context_options)``: a fresh Chromium (its own profile dir) and a page.

    At teardown, fails the test if the page raised a JavaScript error or asked anything of a
    host other than the test server; on failure, saves a screenshot as FAILED-<test>.png.
    """
    opened: list[tuple[Any, Any, list[str], list[str]]] = []

    def open_(**options: Any):
        profile = tmp_path / f"chromium-profile-{len(opened)}"
        options.setdefault("viewport", DESKTOP)
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            accept_downloads=True,
            locale="en-US",
            timezone_id="UTC",
            permissions=["clipboard-read", "clipboard-write"],
            **options,
        )
        context.set_default_timeout(10_000)
        page = context.pages[0] if context.pages else context.new_page()
        requests: list[str] = []
        errors: list[str] = []

        def on_console(message: Any) -> None:
            # An API error answer (a 400 for a wrong code) is logged as a failed resource: fine.
            if message.type == "error" and not message.text.startswith("Failed to load resource"):
                errors.append(f"console: {message.text}")

        context.on("request", lambda req: requests.append(req.url))
        page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
        page.on("console", on_console)
        opened.append((context, page, requests, errors))
        return page

    yield open_

    failed = getattr(request.node, "report_call", None)
    problems = []
    for context, page, requests, errors in opened:
        if failed is not None and failed.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            path = SCREENSHOTS / f"FAILED-{request.node.name}.png"
            page.screenshot(path=str(path), full_page=True)
        context.close()
        outside = [
            url
            for url in requests
            if url.startswith(("http:", "https:", "ws:", "wss:"))
            and not url.startswith(live_url_prefixes(request))
        ]
        problems += [f"fetched from outside the test server: {url}" for url in outside]
        problems += errors
    if problems and not (failed is not None and failed.failed):
        pytest.fail("\n".join(problems), pytrace=False)


def live_url_prefixes(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The origins of the test servers this test used (with a trailing slash)."""
    prefixes = []
    for name in ("demo_server", "short_ticket_server"):
        if name in request.fixturenames:
            prefixes.append(request.getfixturevalue(name).url + "/")
    return tuple(prefixes)


@pytest.fixture
def page(open_browser):
    """A desktop-sized page in a fresh browser."""
    return open_browser()


# --- Screenshots ---------------------------------------------------------------------------------


class Screenshots:
    """``shots("step")`` saves build/screenshots/<prefix>-<nn>-<step>.png, numbered in order."""

    def __init__(self, page: Any, prefix: str):
        self.page = page
        self.prefix = prefix
        self.count = 0
        self.saved: list[Path] = []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob(f"{prefix}-*.png"):
            old.unlink()

    def __call__(self, step: str) -> Path:
        self.count += 1
        path = SCREENSHOTS / f"{self.prefix}-{self.count:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.saved.append(path)
        return path


@pytest.fixture
def screenshots() -> Callable[[Any, str], Screenshots]:
    return Screenshots


# --- The example project, served -----------------------------------------------------------------


class DemoServer:
    """The example project under ``manage.py runserver``, on its own port and SQLite file."""

    def __init__(self, workdir: Path, template_db: Path, env: dict[str, str]):
        self.workdir = workdir
        self.database = workdir / "db.sqlite3"
        shutil.copyfile(template_db, self.database)
        self.env = {**_project_env(self.database), **env}
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
                cwd=EXAMPLE,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the demo server exited:\n{self.log.read_text()}", pytrace=False)
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"the demo server did not answer:\n{self.log.read_text()}", pytrace=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def manage(self, *args: str) -> str:
        """Run a management command against this server's database; returns its output."""
        return _manage(self.env, *args)

    def unlock(self, username: str) -> None:
        """What an administrator does for a locked user: drf_totp.devices.unlock()."""
        code = (
            "from django.contrib.auth import get_user_model\n"
            "from drf_totp.devices import unlock\n"
            f"print(unlock(get_user_model().objects.get(username={username!r})))\n"
        )
        # The last line: Django 5.2's shell first reports the objects it imported.
        assert self.manage("shell", "-c", code).strip().splitlines()[-1] == "True"


def _project_env(database: Path) -> dict[str, str]:
    paths = [str(ROOT), str(EXAMPLE), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.e2e.settings",
        "DEMO_DB_PATH": str(database),
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "PYTHONUNBUFFERED": "1",
    }
    # The suite's own backends (tests/settings.py) are not the example project's.
    for name in ("DATABASE_URL", "CACHE_URL"):
        env.pop(name, None)
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        pytest.fail(
            f"manage.py {' '.join(args[:1])} failed:\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def template_db(playwright, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database as `make demo` leaves it: migrated, with the demo user. Servers copy it."""
    database = tmp_path_factory.mktemp("demo-db") / "template.sqlite3"
    env = _project_env(database)
    _manage(env, "migrate", "--noinput")
    output = _manage(env, "demo_user")
    assert "username: demo" in output and "password: demo-password-2fa" in output, output
    return database


def _serve(tmp_path_factory: pytest.TempPathFactory, template_db: Path, **env: str):
    server = DemoServer(tmp_path_factory.mktemp("demo-server"), template_db, env)
    server.start()
    return server


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory, template_db) -> Iterator[DemoServer]:
    """The example project with its usual settings (login tickets live 300 s)."""
    server = _serve(tmp_path_factory, template_db)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def short_ticket_server(tmp_path_factory, template_db) -> Iterator[DemoServer]:
    """The example project with login tickets that expire after 1 second."""
    server = _serve(tmp_path_factory, template_db, DEMO_TICKET_MAX_AGE="1")
    yield server
    server.stop()
