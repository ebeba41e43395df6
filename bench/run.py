"""The benchmark of drf-totp (issue #7): one command, from the repository root.

    python bench/run.py             # SQLite and PostgreSQL, then PostgreSQL at 1,000,000 devices
    python bench/run.py --quick     # shorter runs, fewer users, 100,000 devices
    make bench                      # the same in .venv (BENCH_ARGS="--quick" passes options)

For each database it seeds users with confirmed devices, starts the example project (with
bench/settings.py) under gunicorn with 2 sync workers on 127.0.0.1, loads each endpoint with wrk,
and compares drf-totp's endpoints with a floor (bench/floor.py). It prints a table and writes
JSON and Markdown to build/bench/results/ (--results). Needs wrk (apt-get install wrk) and, for
PostgreSQL, a server that lets it create databases named drf_totp_bench*.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import wait_for_quiet, wrk_path  # noqa: E402
from bench.seed import BENCH_DB_PREFIX  # noqa: E402

SQLITE_URL = f"sqlite:///{ROOT / 'build' / 'bench' / 'bench.sqlite3'}"
POSTGRES_URL = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB_PREFIX}"
TARGETS = {"validate": 0.15, "status": 0.10}  # overhead allowed over the floor
SCALE_TARGET = 0.20  # validate latency at scale over the figure at 1,000 devices
SCALE_CONNECTIONS = 2


def machine() -> dict[str, Any]:
    cpu = "unknown"
    memory_kb = 0
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    versions = {}
    for package in (
        "django",
        "djangorestframework",
        "gunicorn",
        "psycopg",
        "cryptography",
        "pyotp",
    ):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:  # noqa: BLE001 - a missing optional package is simply not listed
            pass
    wrk_version = subprocess.run([wrk_path(), "-v"], capture_output=True, text=True).stdout
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "wrk": wrk_version.split("[")[0].strip() or "wrk",
    }


def session(url: str, label: str, args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    out = args.work / f"{label}.json"
    out.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "bench.session",
        "--database-url", url, "--label", label, "--out", str(out), "--work", str(args.work),
        "--users", str(args.users), "--duration", str(args.duration), "--reps", str(args.reps),
        "--connections", str(args.connections), "--retries", str(args.retries), *extra,
    ]  # fmt: skip
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "DATABASE_URL": url}
    # The drf_totp logger's warnings (one per wrong code) go to gunicorn's log, not here.
    done = subprocess.run(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0 or not out.exists():
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"the {label} session failed")
    return json.loads(out.read_text())


def overhead(value: float, floor: float, *, higher_is_better: bool) -> float:
    """How much slower than the floor: 0.12 = 12 % (of time per request, or of latency)."""
    return floor / value - 1 if higher_is_better else value / floor - 1


def versus(row: dict[str, Any], floor: dict[str, Any]) -> tuple[float, float]:
    """Overheads over a floor: of time per request (from req/s) and of p50 latency."""
    return (
        overhead(row["rps"], floor["rps"], higher_is_better=True),
        overhead(row["p50_ms"], floor["p50_ms"], higher_is_better=False),
    )


def table(results: list[dict[str, Any]]) -> tuple[str, str, list[dict[str, Any]]]:
    """The table as text and as Markdown, and the verdicts on the targets."""
    head = [
        "endpoint", "DB", "req/s", "p50 ms", "p99 ms", "errors", "SQL/req",
        "vs ORM floor (req/s, p50)", "vs SQL floor (req/s, p50)",
    ]  # fmt: skip
    rows = []
    verdicts = []
    for result in results:
        by_key = {row["key"]: row for row in result["rows"]}
        for row in result["rows"]:
            cells = []
            for index, floor_key in enumerate(row["floors"] or []):
                floor = by_key.get(floor_key)
                if floor is None:
                    cells.append("")
                    continue
                slower, later = versus(row, floor)
                cells.append(f"{slower:+.0%}, {later:+.0%}")
                target = TARGETS.get(row["key"])
                if target is not None and index == 0:
                    verdicts.append(
                        {
                            "what": f"{row['key']} within {target:.0%} of its ORM floor "
                            f"({result['database']})",
                            "throughput_overhead": round(slower, 3),
                            "p50_overhead": round(later, 3),
                            "met": slower <= target and later <= target,
                        }
                    )
            cells += [""] * (2 - len(cells))
            queries = row["queries"]
            rows.append(
                [
                    row["label"],
                    result["database"],
                    f"{row['rps']:,.0f}" + (" pairs" if row["key"] == "pair" else ""),
                    f"{row['p50_ms']:.2f}",
                    f"{row['p99_ms']:.2f}",
                    str(row["errors"]),
                    "" if queries is None else str(queries),
                    *cells,
                ]
            )
        errors = sum(row["errors"] for row in result["rows"])
        verdicts.append(
            {"what": f"zero errors ({result['database']})", "errors": errors, "met": errors == 0}
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    numeric = {2, 3, 4, 5, 6}

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    text = "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])
    markdown = "\n".join(
        [
            "| " + " | ".join(head) + " |",
            "|" + "|".join("---:" if i in numeric else "---" for i in range(len(head))) + "|",
            *("| " + " | ".join(r) + " |" for r in rows),
        ]
    )
    return text, markdown, verdicts


def scale_table(scale: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    head = ["devices", "req/s", "p50 ms", "p99 ms", "mean ms", "errors"]
    rows = [
        [
            f"{r['devices']:,}",
            f"{r['rps']:,.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['mean_ms']:.2f}",
            str(r["errors"]),
        ]
        for r in scale["results"]
    ]
    small, large = scale["results"][0], scale["results"][-1]
    growth = large["p50_ms"] / small["p50_ms"] - 1
    verdict = {
        "what": f"validate p50 at {large['devices']:,} devices within {SCALE_TARGET:.0%} of 1,000",
        "p50_growth": round(growth, 3),
        "met": growth <= SCALE_TARGET and small["errors"] == 0 and large["errors"] == 0,
    }
    text = "\n".join("  ".join(c.rjust(12) for c in r) for r in [head, *rows])
    markdown = "\n".join(
        [
            "| " + " | ".join(head) + " |",
            "|" + "---:|" * len(head),
            *("| " + " | ".join(r) + " |" for r in rows),
        ]
    )
    return text, markdown, verdict


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="short runs: a smoke test, not figures"
    )
    parser.add_argument(
        "--db", default="sqlite,postgres", help="sqlite, postgres or both (default)"
    )
    parser.add_argument(
        "--postgres-url", default=POSTGRES_URL, help="its database is dropped and made anew"
    )
    parser.add_argument("--users", type=int, help="users seeded (default 20,000; quick 6,000)")
    parser.add_argument("--duration", type=float, help="seconds per run (default 3; quick 2)")
    parser.add_argument(
        "--reps", type=int, help="runs per row, median reported (default 9; quick 1)"
    )
    parser.add_argument("--connections", type=int, default=4, help="wrk connections (default 4)")
    parser.add_argument(
        "--scale", type=int, help="devices of the scale test (default 1,000,000; quick 100,000)"
    )
    parser.add_argument("--no-scale", action="store_true", help="skip the scale test")
    parser.add_argument(
        "--retries",
        type=int,
        help="runs repeated while other programs take the CPU (default 1; quick 0)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--results", type=Path, default=ROOT / "build" / "bench" / "results")
    args = parser.parse_args()
    args.users = args.users or (6000 if args.quick else 20000)
    args.duration = args.duration or (2 if args.quick else 3)
    args.retries = (0 if args.quick else 1) if args.retries is None else args.retries
    args.reps = args.reps or (1 if args.quick else 9)
    args.scale = args.scale or (100_000 if args.quick else 1_000_000)
    args.work = ROOT / "build" / "bench"
    args.work.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    databases = [d.strip() for d in args.db.split(",") if d.strip()]

    started = time.monotonic()
    info = machine()
    foreign = wait_for_quiet(patience=30 if args.quick else 120)
    print(
        f"drf-totp bench, {info['date']}: {info['cpus']} x {info['cpu_model']}, "
        f"{info['memory_gib']} GiB; other programs use {foreign:.2f} cores",
        flush=True,
    )
    results = []
    for database in databases:
        url = SQLITE_URL if database == "sqlite" else args.postgres_url
        extra = [] if args.no_profile or database != databases[-1] else ["--profile"]
        print(
            f"{database}: seeding {args.users:,} users, then {args.reps} x {args.duration:g} s per row",
            flush=True,
        )
        results.append(session(url, database, args, extra))
    scale = None
    if "postgres" in databases and not args.no_scale:
        url = args.postgres_url.rsplit("/", 1)[0] + f"/{BENCH_DB_PREFIX}_scale"
        print(f"postgres scale: 1,000 devices beside {args.scale:,}", flush=True)
        # As many connections as workers: no request waits for a worker, so p50 is the time a
        # worker takes. Runs of 3 s: 1,000 users have 3,000 fresh codes a step, two runs' worth.
        reps = "2" if args.quick else "6"
        options = ["--scale", str(args.scale), "--reps", reps, "--duration", "3"]
        scale = session(url, "scale", args, [*options, "--connections", str(SCALE_CONNECTIONS)])
    elapsed = time.monotonic() - started

    text, markdown, verdicts = table(results)
    print()
    print(text)
    if results:
        print("\nSettings changed from the example project for the bench:")
        for change in results[0]["settings_changes"]:
            print(f"  - {change}")
    scale_markdown = ""
    if scale:
        scale_text, scale_markdown, verdict = scale_table(scale)
        verdicts.append(verdict)
        print(f"\nvalidate on PostgreSQL at scale ({SCALE_CONNECTIONS} connections):")
        print(scale_text)
    for result in results:
        if result.get("profile") and result["profile"].get("samples"):
            print(
                f"\nprofile of validate ({result['database']}, py-spy, {result['profile']['samples']} samples):"
            )
            for frame in result["profile"]["key_frames"]:
                print(f"  {frame['percent']:5.1f} %  {frame['what']}")
    print("\ntargets:")
    for verdict in verdicts:
        figures = {k: v for k, v in verdict.items() if k not in ("what", "met")}
        print(f"  {'met   ' if verdict['met'] else 'MISSED'}  {verdict['what']}  {figures}")
    print(f"\n{elapsed / 60:.1f} minutes")

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    for result in results:
        path = args.results / f"{stamp}-{result['database']}.json"
        path.write_text(json.dumps({"machine": info, **result}, indent=2, default=str))
    if scale:
        (args.results / f"{stamp}-postgres-scale.json").write_text(
            json.dumps({"machine": info, **scale}, indent=2, default=str)
        )
    summary = {
        "machine": info,
        "minutes": round(elapsed / 60, 1),
        "verdicts": verdicts,
        "quick": args.quick,
    }
    (args.results / f"{stamp}-summary.json").write_text(json.dumps(summary, indent=2))
    (args.results / f"{stamp}.md").write_text(markdown + "\n\n" + scale_markdown + "\n")
    print(f"results: {args.results}/{stamp}-*.json, {stamp}.md")


if __name__ == "__main__":
    main()
