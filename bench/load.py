"""The load generator (wrk) and the server under test (gunicorn), both on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
HOST = "127.0.0.1"
WORKERS = 2


@dataclass
class Run:
    """One wrk run: what wrk measured, and what the bench checked afterwards."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    socket_errors: int
    status_errors: int  # statuses > 399 (success rows) or other than the expected one
    exhausted: int  # requests sent after the prepared list ran out
    pairs: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.socket_errors + self.status_errors


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn with 2 sync workers serving bench.wsgi, its output in ``log``."""

    def __init__(self, database_url: str, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log = log
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": database_url,
        }
        command = [
            sys.executable, "-m", "gunicorn",
            "--workers", str(WORKERS),
            "--worker-class", "sync",
            "--bind", f"{HOST}:{self.port}",
            "--log-level", "warning",
            "bench.wsgi:application",
        ]  # fmt: skip
        self.log_file = log.open("ab")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log_file, stderr=subprocess.STDOUT
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_ready(self, token: str, timeout: float = 30.0) -> None:
        """Until both workers answer (each has imported Django and connected)."""
        deadline = time.monotonic() + timeout
        ok = 0
        while ok < 2 * WORKERS:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not start; see {self.log}")
            request = urllib.request.Request(
                f"{self.url}/bench/floor/row/", headers={"Authorization": f"Token {token}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    ok += response.status == 200
            except OSError:
                time.sleep(0.2)

    def worker_pids(self) -> list[int]:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk not found: apt-get install -y wrk (Debian), then run again")
    return path


Line = tuple[str, str, str, str]  # method, path, token ("-": none), body ("": none)


def write_lanes(directory: Path, lanes: Sequence[Sequence[str]]) -> None:
    """One file of prepared lines per wrk thread."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for number, lines in enumerate(lanes, start=1):
        (directory / f"t{number}.txt").write_text("".join(f"{line}\n" for line in lines))


def request_line(method: str, path: str, token: str | None, body: dict | None = None) -> str:
    text = json.dumps(body, separators=(",", ":")) if body is not None else ""
    return "\t".join((method, path, token or "-", text))


def wrk(
    url: str,
    script: str,
    directory: Path,
    *,
    connections: int,
    duration: float,
    expected_status: int = 0,
) -> Run:
    """Run wrk with ``connections`` connections, one per thread, for ``duration`` seconds."""
    command = [
        wrk_path(),
        "-t", str(connections),
        "-c", str(connections),
        "-d", f"{max(1, round(duration))}s",
        "--timeout", "10s",
        "-s", str(BENCH_DIR / script),
        url,
        "--", str(directory), str(expected_status),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
    seconds = raw["duration_us"] / 1e6
    pairs = raw.get("pairs")
    completed = pairs if pairs is not None else raw["requests"]
    socket_errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    status_errors = raw["unexpected"] if expected_status or pairs is not None else raw["status"]
    return Run(
        requests=raw["requests"],
        duration_s=seconds,
        rps=completed / seconds,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        socket_errors=socket_errors,
        status_errors=status_errors,
        exhausted=raw["exhausted"],
        pairs=pairs,
    )


# -- other load on the machine -------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU seconds spent by processes of the whole machine since boot (all cores).

    user + nice + system: the time processes can be charged with. Interrupts (the loopback
    traffic of the bench itself, mostly) are left out.
    """
    with open("/proc/stat") as stat:
        user, nice, system = (int(x) for x in stat.readline().split()[1:4])
    return (user + nice + system) / CLOCK_TICKS


def _process_seconds(pid: int) -> tuple[str, float]:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return "", 0.0
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


class CpuMeter:
    """How much CPU went to processes other than the bench's own during a run.

    The bench's own: this process, gunicorn and its workers, wrk, and PostgreSQL's processes.
    Everything else (another program on the machine) distorts the figures; it is reported.
    """

    def __init__(self, own_pids: Callable[[], list[int]]) -> None:
        self.own_pids = own_pids

    def _own_seconds(self) -> dict[int, float]:
        seconds = {}
        pids = set(self.own_pids()) | {os.getpid()}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            name, used = _process_seconds(pid)
            if pid in pids or name in ("postgres", "wrk"):
                seconds[pid] = used
        return seconds

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._busy0 = _busy_seconds()
        self._own0 = self._own_seconds()

    def stop(self) -> float:
        """Cores' worth of foreign CPU use since start(), e.g. 0.3 = 30 % of one core."""
        elapsed = time.monotonic() - self._t0
        busy = _busy_seconds() - self._busy0
        own1 = self._own_seconds()
        own = sum(used - self._own0.get(pid, 0.0) for pid, used in own1.items())
        return max(0.0, busy - own) / elapsed if elapsed > 0 else 0.0


def wait_for_quiet(limit_cores: float = 0.25, patience: float = 120.0) -> float:
    """Wait (at most ``patience`` s) until other programs use under ``limit_cores``; return it."""
    meter = CpuMeter(lambda: [])
    deadline = time.monotonic() + patience
    while True:
        meter.start()
        time.sleep(2)
        foreign = meter.stop()
        if foreign < limit_cores or time.monotonic() > deadline:
            return foreign
