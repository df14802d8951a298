"""The status board with 500 customers and 5,000 runs: time to build it from Prefect's API, and to
load the /board page of the web app (all customers, and filtered by one CSM).

    .venv/bin/python -m benchmarks.status_board                 # 500 customers, 10 runs each
    .venv/bin/python -m benchmarks.status_board --customers 50  # smaller
    git show main:tasks/status_board.py > /tmp/old_board.py   # before/after on the same data:
    .venv/bin/python -m benchmarks.status_board --baseline /tmp/old_board.py
    .venv/bin/python -m benchmarks.status_board --uploads-per-customer 8  # upload tables (issue 25)

It also counts the requests one build makes of Prefect's API. Also `seed_run` / `seed_customer`: how
the test of the board and this benchmark put runs in states.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime

from prefect.exceptions import PrefectHTTPStatusError

from tasks.contracts import (
    API_IMPLEMENTATION_EMAIL,
    API_INTEGRATION,
    INTEGRATION_ON,
    PRODUCTION_UPLOAD,
    RUNBOOK_FLOWS,
    SETUP_GUIDES,
    SFTP_INTEGRATION,
    progress_artifact,
    upload_artifact,
)
from tasks.upload_history import APPLIED, CARRIED, PENDING, Upload, read_uploads, upload_table

FLOWS = RUNBOOK_FLOWS
STEPS = ["first step", "second step", "third step", "fourth step", "fifth step", "sixth step"]


def customer_form(i: int, csm: str = "csm@10kc.example", company: str | None = None) -> dict:
    return {
        "company_name": company or f"Customer {i}",
        "contact_first_name": "Admin",
        "contact_email": f"admin@c{i}.example",
        "platform": "Workday",
        "email_domains": [f"c{i}.example"],
        "tenant_url": "https://t.10kc.example",
        "hub_url": "https://t.10kc.example/hub",
        "csm": {"name": "CSM", "email": csm},
        "implementation_manager": {"name": "IM", "email": "im@10kc.example"},
        "slack_channel": "#am-bench",
    }


def progress_markdown(flow: str, company: str, done: int, waiting_note: str = "") -> str:
    """What tasks/progress.py publishes: `done` steps done, the next one waiting (or all done)."""
    rows = []
    for i, step in enumerate(STEPS, start=1):
        status = "✅ done" if i <= done else "⏳ waiting" if i == done + 1 else "· next"
        rows.append(f"| {i} | {step} | {status} | {waiting_note if i == done + 1 else ''} |")
    return (
        f"### {company}: {flow}\n\n| # | step | status | note |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def flow_ids(client) -> dict[str, str]:
    return {name: client.request("POST", "/flows/", json={"name": name}).json()["id"] for name in FLOWS}


def seed_run(
    client,
    flows: dict[str, str],
    flow: str,
    parameters: dict,
    state: str,
    pause_key: str = "",
    message: str | None = None,
) -> str:
    """A flow run created straight into a state (PAUSED at `pause_key`, COMPLETED, FAILED… with `message`)."""
    details = {"pause_key": pause_key, "pause_reschedule": True} if state == "PAUSED" else {}
    body = {
        "flow_id": flows[flow],
        "parameters": parameters,
        "state": {
            "type": state,
            "name": "Suspended" if state == "PAUSED" else None,
            "state_details": details,
            "message": message,
        },
    }
    for attempt in range(10):  # SQLite answers 503 while another writer holds it
        try:
            return client.request("POST", "/flow_runs/", json=body).json()["id"]
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code != 503 or attempt == 9:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def seed_progress(client, flow_run_id: str, flow: str, customer: dict, done: int, note: str = "") -> None:

    key = progress_artifact(flow, customer["email_domains"][0])
    client.request(
        "POST",
        "/artifacts/",
        json={
            "key": key,
            "type": "markdown",
            "data": progress_markdown(flow, customer["company_name"], done, note),
            "flow_run_id": flow_run_id,
        },
    )


def seed_customer(client, flows: dict[str, str], i: int, runs: int) -> None:
    """`runs` runs for customer i: older ones finished, the newest in one of the board's states."""
    customer = customer_form(i, csm=f"csm{i % 10}@10kc.example")
    parameters = {"customer": customer, "wait": {"remind_after_hours": 24}}
    for _ in range(runs - 1):
        seed_run(client, flows, SETUP_GUIDES, parameters, "COMPLETED")
    kind = i % 5
    flow = SFTP_INTEGRATION if kind in (2, 3) else API_INTEGRATION
    state, gate = [
        ("PAUSED", INTEGRATION_ON),
        ("PAUSED", API_IMPLEMENTATION_EMAIL),
        ("PAUSED", PRODUCTION_UPLOAD),
        ("FAILED", ""),
        ("COMPLETED", ""),
    ][kind]
    run_id = seed_run(client, flows, flow, parameters, state, gate)
    seed_progress(client, run_id, flow, customer, done=i % 6, note="waiting for someone")


def seed_uploads(client, i: int, uploads: int) -> None:
    """`uploads` uploads of customer i as process-upload publishes them: a pending table at step 8,
    then one with the decision (two tables per upload, as the board reads them)."""
    key = upload_artifact(customer_form(i)["email_domains"][0])
    earlier: list[Upload] = []  # newest first, as process-upload carries them in each table
    for n in range(uploads):
        summary = {
            "hris_rows": 1000 + n,
            "invites": n,
            "updates": 2 * n,
            "deletions": n % 3,
            "deactivations": 0,
            "reactivations": 0,
            "rejected_rows": 0,
            "columns": ["email", "first name", "last name"],
        }
        name, claimed = f"members-{n}.csv", f"2026-11-{n % 28 + 1:02d}T08-00-00Z-members-{n}.csv"
        for decision in (PENDING, APPLIED):
            by = "csm" if decision == APPLIED else ""
            table = upload_table(name, claimed, "api", summary, decision, by, earlier[:CARRIED])
            body = {"key": key, "type": "table", "data": json.dumps(table)}
            created = _post(client, "/artifacts/", body)["created"]
        earlier.insert(0, read_uploads(created_table(table, created))[0])  # as its decided table says


def created_table(table: list[dict], created: str) -> dict:
    """An upload table as the board reads it back (its data and creation time)."""
    return {"data": json.dumps(table), "created": created}


def _post(client, path: str, body: dict) -> dict:
    """POST, waiting out the 503 SQLite answers while another writer holds it."""
    for attempt in range(10):
        try:
            return client.request("POST", path, json=body).json()
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code != 503 or attempt == 9:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


class RequestCount:
    """Counts the HTTP requests this process sends to Prefect's API, by path (a wrapper around
    httpx's send that changes nothing it does): how many calls one board build makes."""

    def __init__(self, api_url: str) -> None:
        import httpx

        self.api_url, self.paths, self._send = api_url.rstrip("/"), {}, httpx.Client.send
        count = self

        def send(client, request, *args, **kwargs):
            url = str(request.url)
            if url.startswith(count.api_url):
                path = url[len(count.api_url) :].split("?")[0]
                count.paths[path] = count.paths.get(path, 0) + 1
            return count._send(client, request, *args, **kwargs)

        httpx.Client.send = send

    def close(self) -> None:
        import httpx

        httpx.Client.send = self._send


def _load(path: str):
    """A module from a file (an older tasks/status_board.py to compare with)."""
    spec = importlib.util.spec_from_file_location("baseline_status_board", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--runs-per-customer", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--uploads-per-customer",
        type=int,
        default=0,
        help="uploads of each customer, two upload tables each (step 8 and its decision)",
    )
    parser.add_argument(
        "--baseline",
        help="another version of tasks/status_board.py: its build_board() is timed on the same data, "
        "alternating with this one's, and its rows compared with this one's",
    )
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="bench-board-")
    os.environ.update(PREFECT_HOME=home, NO_PROXY="127.0.0.1,localhost", PREFECT_LOGGING_LEVEL="WARNING")
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from prefect.client.orchestration import get_client
    from prefect.testing.utilities import prefect_test_harness
    from starlette.applications import Starlette

    from tasks.status_board import build_board
    from tests.conftest import ServerThread
    from webapp.board import routes

    with prefect_test_harness(server_startup_timeout=120):
        started = time.perf_counter()
        with get_client(sync_client=True) as client:
            flows = flow_ids(client)

            def seed(i: int) -> None:
                with get_client(sync_client=True) as own:
                    seed_customer(own, flows, i, args.runs_per_customer)
                    seed_uploads(own, i, args.uploads_per_customer)

            with ThreadPoolExecutor(2) as pool:
                list(pool.map(seed, range(args.customers)))
        seeded = time.perf_counter() - started
        total_runs = args.customers * args.runs_per_customer

        from prefect.settings import PREFECT_API_URL

        counter = RequestCount(PREFECT_API_URL.value())
        build_board()
        counter.close()
        charted = sorted(len(row.uploads) for row in build_board())
        reads = {}  # each of the board's reads alone, to see which one the build waits on
        from tasks import board_reads
        from tasks.registry import registrations

        for read in (board_reads.latest_artifacts, board_reads.runs, registrations, board_reads.seen,
                     board_reads.remind_after, board_reads.upload_history):  # fmt: skip
            t0 = time.perf_counter()
            read()
            reads[read.__name__] = round(time.perf_counter() - t0, 3)

        baseline = _load(args.baseline).build_board if args.baseline else None
        builds, baseline_builds, same_rows = [], [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            rows = build_board()
            builds.append(time.perf_counter() - t0)
            if baseline:
                t0 = time.perf_counter()
                baseline_rows = baseline()
                baseline_builds.append(time.perf_counter() - t0)
        assert len(rows) == args.customers, len(rows)
        if baseline:
            now = datetime.now(UTC)
            same_rows = [r.as_table_row() for r in build_board(now)] == [
                r.as_table_row() for r in baseline(now)
            ]
            assert len(baseline_rows) == args.customers, len(baseline_rows)

        cold_server = ServerThread(Starlette(routes=routes(fresh_seconds=0)))  # built on every load
        warm_server = ServerThread(Starlette(routes=routes()))  # reused for 30 s
        loads, filtered = [], []
        try:
            with httpx.Client(timeout=300) as http:
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    page = http.get(f"{cold_server.url}/board")
                    loads.append(time.perf_counter() - t0)
                http.get(f"{warm_server.url}/board")
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    http.get(f"{warm_server.url}/board", params={"csm": "csm3@10kc.example"})
                    filtered.append(time.perf_counter() - t0)
        finally:
            cold_server.stop()
            warm_server.stop()
        result = {
            "customers": args.customers,
            "runs": total_runs,
            "seed_seconds": round(seeded, 1),
            "upload_tables": args.customers * args.uploads_per_customer * 2,
            "api_requests_per_build": sum(counter.paths.values()),
            "api_requests_by_path": counter.paths,
            "uploads_charted_min_median_max": [charted[0], statistics.median(charted), charted[-1]],
            "read_alone_s": reads,
            "build_median_s": round(statistics.median(builds), 3),
            "build_max_s": round(max(builds), 3),
            **(
                {
                    "baseline_build_median_s": round(statistics.median(baseline_builds), 3),
                    "baseline_build_max_s": round(max(baseline_builds), 3),
                    "same_rows_as_baseline": same_rows,
                }
                if baseline
                else {}
            ),
            "page_median_s": round(statistics.median(loads), 3),
            "page_filtered_warm_median_s": round(statistics.median(filtered), 3),
            "page_kib": round(len(page.content) / 1024),
            "load_average": [round(x, 1) for x in os.getloadavg()],
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
