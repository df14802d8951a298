"""`make bench-clicks`: does a CSM's Submit or Resume get 503 "database is locked" from the SQLite
Prefect server that `make up` starts, while the server is busy with other writers?

Starts the Prefect server exactly as `make up` does (cli/stack.py: its environment and its
command) on a fresh SQLite database, then, for `--seconds`:
- `--writers` busy flow runs, each doing what a flow-run process and its worker write: create the
  run, Pending, labels, Running, task runs with their states, logs, a run input, an artifact,
  Completed, again and again (the load of `make bench-load`, or of schedules catching up and the
  worker picking up runs at `make up`);
- meanwhile a CSM's clicks through the REST endpoints the UI calls, one request each, no retry:
  Submit (`POST /api/deployments/{id}/create_flow_run`) and Resume with a run input
  (`POST /api/flow_runs/{id}/resume` of a suspended run with a form).

Reports the answers of the clicks and of the writers by status code, and the "database is locked"
lines in the server log.

    .venv/bin/python -m benchmarks.sqlite_clicks                  # as `make up` starts the server
    .venv/bin/python -m benchmarks.sqlite_clicks --plain-prefect  # `prefect server start` as before
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
LOCKED = "database is locked"
FORM_SCHEMA = {
    "type": "object",
    "properties": {"decision": {"type": "string"}, "approver": {"type": "string"}},
    "required": ["decision", "approver"],
}


@dataclass
class Server:
    api_url: str
    log: Path
    process: subprocess.Popen

    def locked_lines(self) -> int:
        return self.log.read_text(errors="replace").count(LOCKED)


@contextmanager
def stack_server(port: int, plain_prefect: bool = False) -> Iterator[Server]:
    """The Prefect server of `make up` (its settings and command) on a fresh SQLite database in a
    temporary state directory; `plain_prefect` starts it the way `make up` did before
    (`prefect server start`)."""
    from cli.stack import healthy, server_command, stack_settings

    home = Path(tempfile.mkdtemp(prefix="hris-clicks-"))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HRIS_"))}
    settings = stack_settings({"HRIS_PREFECT_PORT": str(port), "HRIS_STATE_DIR": str(home)})
    command = [str(Path(sys.executable).parent / "prefect"), "server", "start"] if plain_prefect else None
    log = home / "prefect-server.log"
    process = subprocess.Popen(
        command or server_command(),
        cwd=ROOT,
        env=environ | settings,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(settings["PREFECT_API_URL"], log, process)
    try:
        deadline = time.monotonic() + 180
        while not healthy(server.api_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Prefect server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield server
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
        if keep_log := os.environ.get("HRIS_CLICKS_LOG"):
            shutil.copy(log, keep_log)
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class Clicks:
    """Answers by status code: the CSM's submits and resumes, and the busy writers' requests."""

    submits: Counter = field(default_factory=Counter)
    resumes: Counter = field(default_factory=Counter)
    writers: Counter = field(default_factory=Counter)
    resumed: int = 0  # resumes the server took (the run left Suspended)
    click_seconds: list[float] = field(default_factory=list)  # how long each click waited for its answer
    locked_in_log: int = 0
    seconds: float = 0.0

    @property
    def refused(self) -> int:
        """Clicks answered 503 (what the UI shows as an unknown error)."""
        return self.submits[503] + self.resumes[503]

    def row(self) -> dict:
        return {
            "submits": dict(self.submits),
            "resumes": dict(self.resumes),
            "resumed": self.resumed,
            "click_median_s": round(statistics.median(self.click_seconds), 2) if self.click_seconds else None,
            "click_max_s": round(max(self.click_seconds), 2) if self.click_seconds else None,
            "clicks_refused_503": self.refused,
            "writer_requests": dict(self.writers),
            "database_is_locked_in_log": self.locked_in_log,
            "seconds": round(self.seconds, 1),
        }


def _state(kind: str, **details) -> dict:
    return {"state": {"type": kind, "state_details": details}, "force": True}


async def _setup(client: httpx.AsyncClient) -> tuple[str, str]:
    flow = (await client.post("/flows/", json={"name": "click-load"})).raise_for_status().json()
    deployment = await client.post(
        "/deployments/",
        json={
            "name": "clicks",
            "flow_id": flow["id"],
            "parameter_openapi_schema": {"type": "object", "properties": {"customer": {"type": "object"}}},
        },
    )
    for number in range(3):  # schedules to fill: the scheduler writes ~100 runs for each, as at `make up`
        scheduled = await client.post(
            "/deployments/",
            json={
                "name": f"every-minute-{number}",
                "flow_id": flow["id"],
                "schedules": [{"schedule": {"interval": 60 + number}, "active": True}],
            },
        )
        scheduled.raise_for_status()
    return flow["id"], deployment.raise_for_status().json()["id"]


async def _suspended_run(client: httpx.AsyncClient, deployment_id: str) -> str:
    """A run waiting at a gate with a form, as a suspended setup-guides run is (retried: setup)."""
    for _attempt in range(30):
        try:
            run = (await client.post(f"/deployments/{deployment_id}/create_flow_run", json={})).json()
            key = f"gate-{uuid.uuid4().hex[:8]}"
            for request in (
                client.post(
                    f"/flow_runs/{run['id']}/input",
                    json={"key": f"{key}-schema", "value": json.dumps(FORM_SCHEMA)},
                ),
                client.post(
                    f"/flow_runs/{run['id']}/set_state",
                    json=_state(
                        "PAUSED",
                        pause_key=key,
                        pause_reschedule=True,
                        run_input_keyset={
                            "description": f"{key}-description",
                            "response": f"{key}-response",
                            "schema": f"{key}-schema",
                        },
                    ),
                ),
            ):
                (await request).raise_for_status()
            return str(run["id"])
        except (httpx.HTTPError, KeyError):
            await asyncio.sleep(0.5)
    raise RuntimeError("could not set up a suspended run")


async def _busy_flow_runs(
    client: httpx.AsyncClient, flow_id: str, stop: asyncio.Event, seen: Counter
) -> None:
    """What a flow-run process and its worker write, over and over, until `stop`."""

    async def call(method: str, url: str, body) -> dict | list | None:
        try:
            response = await client.request(method, url, json=body)
        except httpx.HTTPError as exc:
            seen[type(exc).__name__] += 1
            return None
        seen[response.status_code] += 1
        return response.json() if response.status_code in (200, 201) and response.content else None

    while not stop.is_set():
        run = await call("POST", "/flow_runs/", {"flow_id": flow_id, "name": f"busy-{uuid.uuid4().hex[:6]}"})
        if not isinstance(run, dict):
            continue
        url = f"/flow_runs/{run['id']}"
        await call("POST", f"{url}/set_state", _state("PENDING"))
        await call("PATCH", f"{url}/labels", {"prefect.worker.name": "busy", "hris.load": "1"})
        await call("POST", f"{url}/set_state", _state("RUNNING"))
        for number in range(3):
            task = await call(
                "POST",
                "/task_runs/",
                {"flow_run_id": run["id"], "task_key": f"step-{number}", "dynamic_key": "0", "name": "step"},
            )
            if isinstance(task, dict):
                await call("POST", f"/task_runs/{task['id']}/set_state", _state("RUNNING"))
                await call("POST", f"/task_runs/{task['id']}/set_state", _state("COMPLETED"))
        logs = [
            {
                "name": "busy",
                "level": 20,
                "message": f"line {n}",
                "timestamp": "2026-12-01T00:00:00Z",
                "flow_run_id": run["id"],
            }
            for n in range(20)
        ]
        await call("POST", "/logs/", logs)
        await call("POST", f"{url}/input", {"key": f"note-{uuid.uuid4().hex[:6]}", "value": "{}"})
        await call("POST", "/artifacts/", {"type": "markdown", "data": "progress", "flow_run_id": run["id"]})
        await call("POST", f"{url}/set_state", _state("COMPLETED"))


async def _clicks(api_url: str, writers: int, seconds: float, clicks: int) -> Clicks:
    result = Clicks()
    limits = httpx.Limits(max_connections=writers + 2 * clicks + 10)
    timeout = httpx.Timeout(120)
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=timeout) as client:
        flow_id, deployment_id = await _setup(client)
        waiting = [await _suspended_run(client, deployment_id) for _ in range(clicks)]
        stop = asyncio.Event()
        busy = [
            asyncio.create_task(_busy_flow_runs(client, flow_id, stop, result.writers))
            for _ in range(writers)
        ]
        started = time.monotonic()

        async def submit(number: int) -> None:
            body = {"parameters": {"customer": {"company_name": f"Click {number}"}}}
            clicked = time.monotonic()
            response = await client.post(f"/deployments/{deployment_id}/create_flow_run", json=body)
            result.click_seconds.append(time.monotonic() - clicked)
            result.submits[response.status_code] += 1

        async def resume(run_id: str) -> None:
            body = {"run_input": {"decision": "approve", "approver": "Casey Success"}}
            clicked = time.monotonic()
            response = await client.post(f"/flow_runs/{run_id}/resume", json=body)
            result.click_seconds.append(time.monotonic() - clicked)
            result.resumes[response.status_code] += 1
            if response.status_code == 201 and response.json().get("status") == "ACCEPT":
                result.resumed += 1

        await asyncio.sleep(min(2.0, seconds / 10))  # the writers are at it
        pause = max(0.0, (seconds - 2.0) / max(clicks, 1))
        pending = []
        for number, run_id in enumerate(waiting):
            pending += [asyncio.create_task(submit(number)), asyncio.create_task(resume(run_id))]
            await asyncio.sleep(pause)
        await asyncio.gather(*pending)
        stop.set()
        await asyncio.gather(*busy)
        result.seconds = time.monotonic() - started
    return result


def measure(
    port: int, writers: int = 20, seconds: float = 40, clicks: int = 20, plain_prefect: bool = False
) -> Clicks:
    """One server as `make up` starts it (or as before: `plain_prefect`), busy writers, a CSM's clicks."""
    with stack_server(port, plain_prefect) as server:
        result = asyncio.run(_clicks(server.api_url, writers, seconds, clicks))
        result.locked_in_log = server.locked_lines()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=20, help="busy flow runs writing at once (default 20)")
    parser.add_argument("--seconds", type=float, default=40, help="how long the clicks are spread over")
    parser.add_argument("--clicks", type=int, default=20, help="submits, and as many resumes (default 20)")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--plain-prefect", action="store_true", help="start `prefect server start` as before")
    args = parser.parse_args(argv)
    from benchmarks.services import free_port

    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    os.environ.setdefault("no_proxy", "127.0.0.1,localhost")
    result = measure(args.port or free_port(), args.writers, args.seconds, args.clicks, args.plain_prefect)
    row = {"server": "prefect server start" if args.plain_prefect else "make up", "writers": args.writers}
    print(json.dumps(row | result.row()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
