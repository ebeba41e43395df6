"""Where a validate spends its time: py-spy samples the gunicorn workers under load."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# A frame of py-spy's raw output with --nolineno: "function (path/to/file.py)".
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*)\)$")
# The frames reported by name, in the order of a request.
KEY_FRAMES = [
    ("request, as the WSGI handler sees it", "django/core/handlers/wsgi.py", "__call__"),
    ("middleware before and after the view", "django/core/handlers/base.py", "_get_response"),
    ("DRF dispatch", "rest_framework/views.py", "dispatch"),
    ("authentication (drf-totp token)", "rest_framework/authentication.py", "authenticate"),
    ("throttles", "rest_framework/views.py", "check_throttles"),
    ("parse and validate the body", "drf_totp/views.py", "validated"),
    ("ValidateView.post", "drf_totp/views.py", "post"),
    ("read the device and reserve the guess (SQL)", "drf_totp/lockout.py", "reserve"),
    ("decrypt the secret", "drf_totp/crypto.py", "decrypt"),
    ("  of which key derivation", "drf_totp/crypto.py", "configured_keys"),
    ("compute the window's codes", "drf_totp/otp.py", "matching_step"),
    ("check the code (all of it)", "drf_totp/verification.py", "_check_totp"),
    ("accept it and mark the token (SQL)", "drf_totp/statements.py", "accept"),
    ("signals (log + send)", "drf_totp/signals.py", "send_on_commit"),
    ("render the response", "rest_framework/response.py", "rendered_content"),
    ("SQL: execute (driver + database)", "django/db/backends/utils.py", "_execute"),
    ("SQL: compile (ORM)", "django/db/models/sql/compiler.py", "as_sql"),
]


def short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def summarize(raw: Path) -> dict[str, Any]:
    """Inclusive share of the request samples per key frame, and the top frames by self time."""
    inclusive: Counter[tuple[str, str]] = Counter()
    self_time: Counter[tuple[str, str]] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit() or "handle_request" not in stack:
            continue  # not a worker serving a request (the arbiter, or idle)
        count = int(count_text)
        total += count
        frames = []
        for text in stack.split(";"):
            match = FRAME.match(text)
            if match:
                frames.append((match["function"], short(match["file"])))
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            self_time[frames[-1]] += count
    if not total:
        return {"samples": 0}

    def share(function: str, file: str) -> float:
        hits = sum(
            n
            for (f, path), n in inclusive.items()
            if (f == function or f.endswith(f".{function}")) and path.endswith(file)
        )
        return round(100 * hits / total, 1)

    return {
        "samples": total,
        "key_frames": [
            {"what": label, "frame": f"{file}:{function}", "percent": share(function, file)}
            for label, file, function in KEY_FRAMES
        ],
        "top_self": [
            {"frame": f"{path}:{function}", "percent": round(100 * n / total, 1)}
            for (function, path), n in self_time.most_common(15)
        ],
    }


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def profile_validate(bench: Any, server: Any, out: Path) -> dict[str, Any] | None:
    """Sample the workers with py-spy while wrk sends right codes to validate."""
    from bench.session import KINDS

    tool = py_spy()
    if tool is None:
        print("  py-spy not found: no profile (pip install py-spy)", flush=True)
        return None
    raw = out.with_suffix(".txt")
    seconds = bench.args.duration + 2
    command = [
        tool, "record", "--pid", str(server.process.pid), "--subprocesses",
        "--rate", "250", "--nolineno", "--format", "raw",
        "--duration", str(int(seconds)), "--output", str(raw),
    ]  # fmt: skip
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    validate = next(kind for kind in KINDS if kind.key == "validate")
    bench.run_once(server.url, validate)
    _, err = spy.communicate(timeout=seconds + 60)
    if not raw.exists():
        print(f"  py-spy failed: {err.strip()[-500:]}", flush=True)
        return None
    summary = summarize(raw)
    summary["raw"] = str(raw)
    return summary
