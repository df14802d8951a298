"""Benchmark update-mapping's what-if (issue 23 §3) beside one `generate-files` run, at 1M rows.

    make bench-whatif                          # 1,000,000 rows (data cached in benchmarks/data/)
    python -m benchmarks.whatif --rows 100000 --repeat 5

Both are whole processes, timed from outside and interleaved, best of `--repeat` (other work on the
machine only ever slows a run down): `hris-runbook generate-files` on the upload, and a process
running `tasks/mapping_whatif.py` `what_if` on the files kept for that upload (made first, as
process-upload keeps them) with a changed table. The target: the what-if at most twice the engine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from benchmarks.run import ROOT, _best, _dataset, _run_engine, _timed

TARGET_RATIO = 2.0


def write_new_mapping(old: Path, new: Path) -> None:
    """The benchmark's table with a change of each kind: a value mapped elsewhere (Paris to Paris HQ), a
    value no longer mapped (Madrid), and every other row as it was."""
    with old.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    changed = []
    for row in rows:
        if row[2] == "MADRID":
            continue
        if row[2] == "PARIS":
            row = [*row[:5], "Paris HQ", *row[6:]]
        changed.append(row)
    with new.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(changed)


def kept_upload(folder: Path) -> Path:
    """The files folder process-upload leaves for an applied upload: its files and its inputs."""
    from tasks.files import generate_files
    from tasks.mapping_whatif import keep_inputs

    kept = folder / "kept"
    if not (kept / "summary.json").is_file():
        generate_files(
            folder / "hris.csv",
            folder / "members.csv",
            folder / "mapping.csv",
            kept,
            allow_mass_deletion=True,
            hub_copies=True,
        )
        keep_inputs(kept, folder / "hris.csv", folder / "members.csv")
    write_new_mapping(folder / "mapping.csv", folder / "mapping-new.csv")
    return kept


def run_what_if(folder: Path) -> dict:
    """The what-if's own process: as update-mapping's task runs it, counts out as JSON."""
    from tasks.files import use_jemalloc
    from tasks.mapping import read_mapping_file
    from tasks.mapping_whatif import what_if

    use_jemalloc()
    with tempfile.TemporaryDirectory(prefix="hris-whatif-", dir=folder) as scratch:
        found = what_if(
            "hris.csv", folder / "kept", read_mapping_file(folder / "mapping-new.csv"), Path(scratch)
        )
    return {
        "fields": {
            f.name: [f.members_changed, len(f.newly_mapped), len(f.newly_unmapped)] for f in found.fields
        },
        "old": found.old,
        "new": found.new,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--run-in", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_in:
        print(json.dumps(run_what_if(args.run_in)))
        return 0

    folder = _dataset("clean", args.rows)
    kept_upload(folder)
    engine_runs, whatif_runs = [], []
    for _ in range(args.repeat):
        engine_runs.append(_run_engine(folder, ROOT))
        measured, stdout = _timed([sys.executable, "-m", "benchmarks.whatif", "--run-in", str(folder)], ROOT)
        whatif_runs.append({**measured, **json.loads(stdout)})
    engine, whatif = _best(engine_runs), _best(whatif_runs)
    ratio = round(whatif["seconds"] / engine["seconds"], 2)
    # On a loaded machine wall time is mostly waiting for a core; CPU time (user + system, all
    # threads) is what the process itself costs.
    cpu_ratio = round(whatif["cpu_seconds"] / engine["cpu_seconds"], 2)
    result = {
        "rows": args.rows,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_1min": os.getloadavg()[0],
        "generate_files": engine,
        "what_if": whatif,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "target": f"<= {TARGET_RATIO}",
    }
    out = ROOT / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / f"whatif-{args.rows}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if min(ratio, cpu_ratio) <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
