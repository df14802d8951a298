"""`make bench-load`: N setup-guides runs at once, every gate answered as soon as it shows, on a
Prefect server on SQLite and on PostgreSQL in the same run.

Both backends get the same workers (two process workers, `--limit` flow-run processes each),
Redis once-locks and shared result storage; only the server's database differs. Reports runs
completed, resumes the API refused, and the time from a resume to the run's next gate (or its end).

    .venv/bin/python -m benchmarks.load                 # N = 10, 50, 100
    .venv/bin/python -m benchmarks.load --n 10          # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

from benchmarks import load_driver, scale, services  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def measure(
    backend: str, database_url: str | None, redis_url: str, sizes: list[int], limit: int
) -> list[dict]:
    rows = []
    with scale.runbook_stack(database_url, redis_url, workers=2, limit=limit) as running:
        stack, smtp = running.stack, running.smtp
        for n in sizes:
            before = len(smtp.handler.messages())
            customers, result = load_driver.run_setup_guides(n, timeout=max(1200, 40 * n))
            emails = len(smtp.handler.messages()) - before
            row = {
                "backend": backend,
                "runs": n,
                "completed": result.completed,
                "unfinished": result.final.get("UNFINISHED", 0),  # still going at the timeout
                "failed_starts": result.failed_starts,
                "failed_resumes": result.failed_resumes,
                "emails": emails,
                "resume_to_next_median_s": round(result.median, 2),
                "resume_to_next_p95_s": round(result.percentile(0.95), 2),
                "wall_s": round(result.seconds, 1),
                "database_is_locked": stack.log_text().count("database is locked"),
                "errors": result.errors[:5],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, action="append", help="runs at once (repeatable; default 10 50 100)")
    parser.add_argument("--limit", type=int, default=10, help="flow-run processes per worker (default 10)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    args = parser.parse_args(argv)
    sizes = args.n or [10, 50, 100]
    backends = args.backend or ["sqlite", "postgresql"]
    if missing := services.missing_services():
        print(f"bench-load needs PostgreSQL and Redis (apt-get install postgresql redis-server): {missing}")
        return 2
    rows: list[dict] = []
    started = time.monotonic()
    with services.redis() as redis_url:
        for backend in backends:
            if backend == "sqlite":
                rows += measure(backend, None, redis_url, sizes, args.limit)
            else:
                with services.postgres() as database_url:
                    rows += measure(backend, database_url, redis_url, sizes, args.limit)
    print()
    print(
        "| database | runs | completed | failed starts | failed resumes | emails | resume→gate median | p95 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        median, p95 = r["resume_to_next_median_s"], r["resume_to_next_p95_s"]
        print(
            f"| {r['backend']} | {r['runs']} | {r['completed']} | {r['failed_starts']} | "
            f"{r['failed_resumes']} | {r['emails']} | {median:.1f} s | {p95:.1f} s |"
        )
    OUT.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()}
    result = {"machine": machine, "seconds": round(time.monotonic() - started), "rows": rows}
    (OUT / "load.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
