"""`make bench-resume`: how long a CSM waits after answering a gate (issue 24), read from Prefect's
own state history of each run.

A stack as `make up` runs it (one process worker without a limit, the worker's query interval of
cli/stack.py, file once-locks on one result storage) with the SMTP and Slack stand-ins as blocks;
setup-guides runs are started through the API and each gate is answered, as soon as its form is
saved, through the endpoint the UI's Resume dialog calls (`POST /flow_runs/{id}/resume`). Each
resume is then measured between the states the server recorded: Resuming → Pending (the worker
picked it up) → Running (a process started and loaded the flow) → the next Paused, or the end.

    .venv/bin/python -m benchmarks.resume                   # 1 run (5 rounds), 20 on SQLite; 20 on PostgreSQL
    .venv/bin/python -m benchmarks.resume --case sqlite:1   # one case
    .venv/bin/python -m benchmarks.resume --start cold,warm # each round once per way of starting, in turn

`--start` is how the worker starts a resumed run's engine: warm (the default, as `make up`: the
pool's command `python -m cli.warm_run`, forked by the warm starter of cli/warm_start.py), command
(as `HRIS_WARM_START=0 make up`: the pool's command set to `python -m prefect.engine`, no
supervisor), cold (Prefect's own default: a workspace supervisor process, then
`python -m prefect.engine`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

from benchmarks import load_driver, scale, services  # noqa: E402
from tasks.contracts import SETUP_GUIDES  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
CASES = ["sqlite:1", "sqlite:20", "postgresql:20"]
SEGMENTS = ("pickup", "start", "flow")  # Resuming→Pending, Pending→Running, Running→next gate
STARTS = ("cold", "command", "warm")
SNAPSHOT_SECONDS = 5  # the worker's heartbeat, when it re-reads the pool's template (Prefect: 30 s)


def resumes(states: list) -> list[dict[str, float]]:
    """Each resume in one run's state history: seconds from Resuming to Running and to the next
    gate (Paused) or end, and the three parts of the latter (`SEGMENTS`)."""
    ordered = sorted(states, key=lambda s: s.timestamp)
    found = []
    for index, state in enumerate(ordered):
        if state.name != "Resuming":
            continue
        later = ordered[index + 1 :]
        pending = next((s for s in later if s.is_pending()), None)
        running = next((s for s in later if s.is_running()), None)
        gate = next((s for s in later if s.is_paused() or s.is_final()), None)
        if running is None or gate is None or pending is None:
            continue  # still going: not measured
        seconds = lambda a, b: (b.timestamp - a.timestamp).total_seconds()  # noqa: E731
        found.append(
            {
                "running": seconds(state, running),
                "next": seconds(state, gate),
                "pickup": seconds(state, pending),
                "start": seconds(pending, running),
                "flow": seconds(running, gate),
            }
        )
    return found


def state_history(ids: list) -> list[dict[str, float]]:
    """Every measured resume of these runs, from the server's state history."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [found for run_id in ids for found in resumes(client.read_flow_run_states(run_id))]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def summary(
    backend: str, runs: int, rounds: int, completed: int, measured: list[dict], errors: list[str], start: str
) -> dict:
    """One row of the table: median / p95 / max of both latencies, medians of the parts."""

    def stats(name: str) -> dict[str, float]:
        values = [m[name] for m in measured]
        if not values:
            return {"median": float("nan"), "p95": float("nan"), "max": float("nan")}
        return {
            "median": round(statistics.median(values), 2),
            "p95": round(percentile(values, 0.95), 2),
            "max": round(max(values), 2),
        }

    return {
        "backend": backend,
        "start": start,
        "runs": runs,
        "rounds": rounds,
        "completed": completed,
        "resumes": len(measured),
        "to_running": stats("running"),
        "to_next": stats("next"),
        "parts_median": {name: stats(name)["median"] for name in SEGMENTS},
        "load": [round(x, 1) for x in os.getloadavg()],
        "errors": errors[:5],
    }


def measure(backend: str, runs: int, rounds: int, starts: dict[str, str | None]) -> list[dict]:
    """`rounds` times, for each way of starting in turn, `runs` setup-guides runs at once, both
    gates answered; their resumes, one row per way of starting."""
    from benchmarks.scale import POOL
    from cli.work_pool import set_pool_command

    measured: dict[str, list[dict]] = {start: [] for start in starts}
    errors: dict[str, list[str]] = {start: [] for start in starts}
    completed = dict.fromkeys(starts, 0)
    for _round in range(rounds):
        for start, command in starts.items():
            set_pool_command(POOL, command)
            time.sleep(SNAPSHOT_SECONDS + 1)  # the worker takes the pool's template on its heartbeat
            customers, result = load_driver.run_setup_guides(runs, timeout=max(900, 45 * runs))
            errors[start] += result.errors + [
                f"{n} runs {state}" for state, n in result.final.items() if state != "COMPLETED"
            ]
            measured[start] += state_history(load_driver.runs_of(SETUP_GUIDES, customers))
            completed[start] += result.completed
    return [summary(backend, runs, rounds, completed[s], measured[s], errors[s], s) for s in starts]


@contextmanager
def warm_starter(stack):
    """The warm starter for this stack's worker, as `make up` runs it beside its worker."""
    from cli.warm_start import server_command, socket_path

    base = stack.logs.parent
    path = socket_path(base)
    log = (stack.logs / "warm-start.log").open("ab")
    env = stack.env | {"PREFECT_HOME": str(base / "worker-1")}
    process = subprocess.Popen(server_command(path), cwd=scale.ROOT, env=env, stdout=log, stderr=log)
    try:
        services.wait_ready(lambda: os.path.exists(path), 120, "warm starter", process)
        yield path
    finally:
        services.stop(process)


def start_commands(names: list[str], path: str | None) -> dict[str, str | None]:
    from cli.warm_start import flow_run_command

    commands = {
        "cold": None,
        "command": shlex.join([sys.executable, "-m", "prefect.engine"]),
        "warm": flow_run_command(path) if path else None,
    }
    return {name: commands[name] for name in names}


def on_stack(
    backend: str, database_url: str | None, cases: list[int], rounds: int, starts: list[str]
) -> list[dict]:
    """The cases of one backend on one make-up-style stack."""
    from cli.stack import stack_settings

    query = stack_settings({})["PREFECT_WORKER_QUERY_SECONDS"]
    rows = []
    with (
        scale.runbook_stack(
            database_url,
            None,
            slack=True,
            workers=1,
            limit=None,
            worker_settings={
                "PREFECT_WORKER_QUERY_SECONDS": query,
                "PREFECT_WORKER_HEARTBEAT_SECONDS": str(SNAPSHOT_SECONDS),
            },
        ) as stack,
        warm_starter(stack.stack) if "warm" in starts else nullcontext() as path,
    ):
        for runs in cases:
            for row in measure(backend, runs, rounds if runs == 1 else 1, start_commands(starts, path)):
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """The rows as docs/performance.md shows them."""
    lines = [
        "| database | start | runs at once | completed | resumes | resume → Running, median / p95 / max | "
        "resume → next gate, median / p95 / max | of which pickup / process start / flow, median | "
        "load average |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        run, nxt, parts = r["to_running"], r["to_next"], r["parts_median"]
        lines.append(
            f"| {r['backend']} | {r.get('start', 'cold')} | {r['runs']} | "
            f"{r['completed']} of {r['runs'] * r['rounds']} | "
            f"{r['resumes']} | "
            f"{run['median']:.1f} / {run['p95']:.1f} / {run['max']:.1f} s | "
            f"**{nxt['median']:.1f}** / {nxt['p95']:.1f} / {nxt['max']:.1f} s | "
            f"{parts['pickup']:.1f} / {parts['start']:.1f} / {parts['flow']:.1f} s | "
            f"{' / '.join(str(x) for x in r['load'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--case", action="append", help=f"backend:runs (repeatable; default {' '.join(CASES)})"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the one-run case (default 5)")
    parser.add_argument("--start", default="warm", help=f"ways of starting, in turn: {','.join(STARTS)}")
    args = parser.parse_args(argv)
    starts = args.start.split(",")
    if unknown := [s for s in starts if s not in STARTS]:
        parser.error(f"--start: unknown {unknown}; choose from {','.join(STARTS)}")
    cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.case or CASES]
    started = time.monotonic()
    rows: list[dict] = []
    for backend in dict.fromkeys(b for b, _ in cases):
        sizes = [n for b, n in cases if b == backend]
        if backend == "sqlite":
            rows += on_stack(backend, None, sizes, args.rounds, starts)
        elif missing := [m for m in services.missing_services() if m != "redis-server"]:
            print(f"postgresql skipped: needs {missing} (apt-get install postgresql)")
        else:
            with services.postgres() as database_url:
                rows += on_stack(backend, database_url, sizes, args.rounds, starts)
    seconds = round(time.monotonic() - started)
    print(f"\n{table(rows)}\n\n{os.cpu_count()} CPUs, Python {platform.python_version()}, {seconds} s in all")
    OUT.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()}
    (OUT / "resume.json").write_text(
        json.dumps({"machine": machine, "seconds": seconds, "rows": rows}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
