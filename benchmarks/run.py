"""Benchmark the file engine against the plain-Python baseline on the same files, in one run.

    make bench                      # 1,000,000 rows (data cached in benchmarks/data/)
    python -m benchmarks.run --rows 100000

Each implementation runs in its own process, so peak memory (max RSS) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _measure(implementation: str, folder: Path) -> dict:
    """Run one implementation in this process and report wall time and peak RSS."""
    if implementation == "engine":
        from tasks.files import generate_files

        def run():
            return generate_files(
                folder / "hris.csv", folder / "members.csv", folder / "mapping.csv", folder / "out-engine"
            ).summary
    else:
        from benchmarks.reference import generate_files_reference

        def run():
            return generate_files_reference(
                folder / "hris.csv", folder / "members.csv", folder / "mapping.csv", folder / "out-baseline"
            )

    started = time.perf_counter()
    summary = run()
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = {k: summary[k] for k in ("invites", "updates", "deletions", "rejected_rows")}
    return {
        "implementation": implementation,
        "seconds": round(seconds, 3),
        "peak_mib": round(peak_mib),
        **counts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="engine runs (the best is reported)")
    parser.add_argument("--one", choices=["engine", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = HERE / "data" / f"rows-{args.rows}"

    if args.one:
        print(json.dumps(_measure(args.one, folder)))
        return 0

    if not (folder / "hris.csv").exists():
        from benchmarks.datasets import make_dataset

        print(f"generating {args.rows:,} rows into {folder} …", flush=True)
        make_dataset(folder, args.rows)
    sizes = {name: (folder / name).stat().st_size / 2**20 for name in ("hris.csv", "members.csv")}

    def one(implementation: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.run", "--rows", str(args.rows), "--one", implementation],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    engine_runs = [one("engine") for _ in range(args.repeat)]
    engine = min(engine_runs, key=lambda r: r["seconds"])
    baseline = one("baseline")
    same = all(engine[k] == baseline[k] for k in ("invites", "updates", "deletions", "rejected_rows"))
    ratio = baseline["seconds"] / engine["seconds"]
    result = {
        "rows": args.rows,
        "hris_mib": round(sizes["hris.csv"], 1),
        "members_mib": round(sizes["members.csv"], 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "engine": engine,
        "engine_all_seconds": [r["seconds"] for r in engine_runs],
        "baseline": baseline,
        "speedup": round(ratio, 1),
        "same_counts": same,
    }
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / f"result-{args.rows}.json").write_text(json.dumps(result, indent=2))
    e, b = engine, baseline
    print(
        f"{args.rows:,} rows (HRIS {result['hris_mib']} MiB, members {result['members_mib']} MiB)"
        f" on {result['machine']}\n"
        f"  engine   {e['seconds']:7.2f} s  peak {e['peak_mib']:5d} MiB runs {result['engine_all_seconds']}\n"
        f"  baseline {b['seconds']:7.2f} s  peak {b['peak_mib']:5d} MiB\n"
        f"  speedup  {ratio:7.1f}x   same counts: {same}\n"
        f"  counts   invites {e['invites']:,}, updates {e['updates']:,}, deletions {e['deletions']:,}"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
