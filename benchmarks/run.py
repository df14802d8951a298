"""Benchmark the file engine against the plain-Python baseline on the same files, in one run.

    make bench                      # 1,000,000 rows, clean and messy (data cached in benchmarks/data/)
    make bench-large                # 5,000,000 rows, messy, polars and DuckDB only, no baseline
    python -m benchmarks.run --rows 100000 --case messy
    python -m benchmarks.run --rows 5000000 --case messy --no-baseline --anchors polars,duckdb

Each run is a whole process, timed from outside: the engine as `hris-runbook generate-files`
(interpreter start, imports, reading, writing), the baseline as a process running
`benchmarks/reference.py`, and the anchors (benchmarks/anchors.py: polars, DuckDB and pandas doing
only the bare join) each as its own process. Peak memory is that process's max RSS. The engine and
the anchors run `--repeat` times, interleaved, and the best run of each is reported (other work on
the machine only ever slows a run down); `ratio` is the engine's best time over polars' best.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COUNTS = ("invites", "updates", "deletions", "rejected_rows")
CASES = {
    "clean": "one line per record, no rejected rows",
    "messy": "UTF-8 BOM, every field quoted, CRLF, 10 names over two lines, 7 rejected rows",
}


def _dataset(case: str, rows: int) -> Path:
    folder = HERE / "data" / (f"rows-{rows}" if case == "clean" else f"{case}-{rows}")
    if not (folder / "hris.csv").exists():
        from benchmarks.datasets import make_dataset, make_messy_upload

        print(f"generating {rows:,} rows ({case}) into {folder} …", flush=True)
        (make_dataset if case == "clean" else make_messy_upload)(folder, rows)
    return folder


def _timed(command: list[str], cwd: Path) -> tuple[dict, str]:
    """Run a command: its wall time, CPU time (user + system) and peak RSS (from wait4), and stdout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {err.read().strip()}")
        measured = {
            "seconds": round(seconds, 2),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_mib": round(usage.ru_maxrss / 1024),
        }
        return measured, out.read()


def _run_engine(folder: Path, checkout: Path) -> dict:
    out = folder / "out-engine"
    command = [
        sys.executable, "-m", "cli.main", "generate-files",
        "--hris-csv", str(folder / "hris.csv"), "--members-csv", str(folder / "members.csv"),
        "--mapping", str(folder / "mapping.csv"), "--out", str(out), "--allow-mass-deletion",
    ]  # fmt: skip
    measured, _ = _timed(command, checkout)
    summary = json.loads((out / "summary.json").read_text())
    return {**measured, **{k: summary[k] for k in COUNTS}}


def _run_baseline(folder: Path) -> dict:
    measured, stdout = _timed([sys.executable, "-m", "benchmarks.run", "--baseline-in", str(folder)], ROOT)
    return {**measured, **json.loads(stdout)}


def _run_anchor(anchor: str, folder: Path) -> dict:
    measured, stdout = _timed([sys.executable, "-m", "benchmarks.anchors", anchor, str(folder)], ROOT)
    return {**measured, **json.loads(stdout)}


def _installed_anchors(wanted: str | None) -> list[str]:
    """The anchors asked for (all by default) whose package is installed (`make bench` installs the
    `bench` extra)."""
    import importlib.util

    from benchmarks.anchors import ANCHORS

    names = list(ANCHORS) if wanted is None else [name.strip() for name in wanted.split(",") if name.strip()]
    unknown = [name for name in names if name not in ANCHORS]
    if unknown:
        raise SystemExit(f"--anchors: unknown {', '.join(unknown)} (known: {', '.join(ANCHORS)})")
    return [name for name in names if importlib.util.find_spec(name) is not None]


def _best(runs: list[dict]) -> dict:
    return {**min(runs, key=lambda r: r["seconds"]), "all_seconds": [r["seconds"] for r in runs]}


def _line(name: str, r: dict, note: str) -> str:
    time_and_memory = f"{r['seconds']:6.2f} s  cpu {r['cpu_seconds']:6.2f} s  peak {r['peak_mib']:5d} MiB"
    return f"  {name:8} {time_and_memory}  {note}\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--repeat", type=int, default=3, help="engine runs per case (the best is reported)")
    parser.add_argument(
        "--before", type=Path, help="another checkout whose engine runs too, interleaved (before/after)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the slow plain-Python baseline")
    parser.add_argument(
        "--anchors",
        help="comma-separated anchors to run (default: all installed); at 5M rows pandas takes minutes "
        "and several GiB, so `make bench-large` runs polars,duckdb",
    )
    parser.add_argument("--baseline-in", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.baseline_in:  # the baseline's own process
        from benchmarks.reference import generate_files_reference

        folder = args.baseline_in
        summary = generate_files_reference(
            folder / "hris.csv", folder / "members.csv", folder / "mapping.csv", folder / "out-baseline"
        )
        print(json.dumps({k: summary[k] for k in COUNTS}))
        return 0

    cases = list(CASES) if args.case == "all" else [args.case]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    ok = True
    for case in cases:
        folder = _dataset(case, args.rows)
        runs, before_runs = [], []
        anchor_runs: dict[str, list[dict]] = {name: [] for name in _installed_anchors(args.anchors)}
        for _ in range(args.repeat):
            runs.append(_run_engine(folder, ROOT))
            if args.before:
                before_runs.append(_run_engine(folder, args.before.resolve()))
            for name, measured in anchor_runs.items():
                measured.append(_run_anchor(name, folder))
        engine = _best(runs)
        before = _best(before_runs) if before_runs else None
        anchors = {name: _best(measured) for name, measured in anchor_runs.items()}
        baseline = None if args.no_baseline else _run_baseline(folder)
        same = baseline is None or all(r[k] == baseline[k] for r in [*runs, *before_runs] for k in COUNTS)
        ok &= same
        ratio = round(engine["seconds"] / anchors["polars"]["seconds"], 2) if "polars" in anchors else None
        ratios = {  # the engine's best time and its peak over each anchor's (issue 24: time <= 1.5x polars')
            name: {
                "seconds": round(engine["seconds"] / r["seconds"], 2),
                "peak": round(engine["peak_mib"] / r["peak_mib"], 2),
            }
            for name, r in anchors.items()
        }
        result = {
            "case": case,
            "description": CASES[case],
            "rows": args.rows,
            "hris_mib": round((folder / "hris.csv").stat().st_size / 2**20, 1),
            "members_mib": round((folder / "members.csv").stat().st_size / 2**20, 1),
            "machine": machine,
            "load_average_1min": os.getloadavg()[0],
            "engine": engine,
            "before": before,
            "baseline": baseline,
            "anchors": anchors,
            "ratio_to_polars": ratio,
            "ratios": ratios,
            "speedup": round(baseline["seconds"] / engine["seconds"], 1) if baseline else None,
            "same_counts": same,
        }
        (HERE / "out").mkdir(exist_ok=True)
        (HERE / "out" / f"result-{case}-{args.rows}.json").write_text(json.dumps(result, indent=2))
        print(
            f"{case}: {args.rows:,} rows ({CASES[case]}; HRIS {result['hris_mib']} MiB) on {machine}\n"
            + _line("engine", engine, f"best of {engine['all_seconds']}")
            + (_line("before", before, f"best of {before['all_seconds']} ({args.before})") if before else "")
            + "".join(_line(name, r, f"bare join, best of {r['all_seconds']}") for name, r in anchors.items())
            + (_line("baseline", baseline, "") if baseline else "")
            + (
                "".join(
                    f"  engine / {name:8} time {r['seconds']:.2f}x  peak {r['peak']:.2f}x\n"
                    for name, r in ratios.items()
                )
                if ratios
                else "  (no anchors: pip install -e '.[bench]')\n"
            )
            + (f"  speedup  {result['speedup']:6.1f}x  same counts: {same}  " if baseline else "  ")
            + f"load {result['load_average_1min']:.1f}\n"
            + f"  counts   invites {engine['invites']:,}, updates {engine['updates']:,}, "
            f"deletions {engine['deletions']:,}, rejected rows {engine['rejected_rows']:,}",
            flush=True,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
