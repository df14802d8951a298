"""A throwaway multi-worker stack, and a CSM who answers every gate at once: for the scale test and
`make bench-load`.

PostgreSQL (a fresh `initdb` cluster) and Redis run from the Debian packages on free loopback
ports; a Prefect server runs on PostgreSQL or SQLite; process workers, each with its own
PREFECT_HOME, share only what several machines would share: the API, result storage, Redis.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.contracts import CUSTOMER_CHOICE, SETUP_GUIDES, SETUP_GUIDES_EMAIL, deployment_name

ROOT = Path(__file__).resolve().parent.parent
POOL = "hris-scale"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate, timeout: float, what: str, process: subprocess.Popen | None = None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            tail = Path(log).read_text()[-2000:] if log else ""
            raise RuntimeError(f"{what}: the process exited ({process.returncode})\n{tail}")
        time.sleep(0.3)
    raise RuntimeError(f"{what}: not ready after {timeout:.0f}s")


def postgres_bin(name: str) -> str | None:
    """A PostgreSQL server binary from the Debian package (not on PATH there), or None."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else shutil.which(name)


def missing_services() -> list[str]:
    """What of PostgreSQL and Redis is missing (the scale test names it; it fails under CI=true)."""
    missing = [name for name in ("initdb", "postgres") if postgres_bin(name) is None]
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("runuser")
    return missing


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: CI runs as root, so run it as the package's user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres():
    """A fresh PostgreSQL cluster on a free port; yields its postgresql+asyncpg URL."""
    base = Path(tempfile.mkdtemp(prefix="hris-pg-"))
    base.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, port = base / "data", free_port()
    subprocess.run(
        _as_postgres_user(
            [postgres_bin("initdb"), "-D", str(data), "-U", "prefect", "-A", "trust", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    log = base / "postgres.log"
    server = subprocess.Popen(
        _as_postgres_user(
            [postgres_bin("postgres"), "-D", str(data), "-p", str(port), "-k", str(base)]
            + ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]
        ),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(lambda: _listening(port), 60, "PostgreSQL", server, log)
        yield f"postgresql+asyncpg://prefect@127.0.0.1:{port}/postgres"
    finally:
        _stop(server)
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def redis():
    """A redis-server on a free port, nothing persisted; yields its redis:// URL."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: _listening(port), 30, "Redis", server)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(server)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _prefect() -> str:
    return str(Path(sys.executable).parent / "prefect")


@dataclass
class Stack:
    """A Prefect server and its workers; `logs` holds every process's output."""

    api_url: str
    logs: Path
    storage: Path
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))


@contextmanager
def prefect_stack(
    database_url: str | None,
    redis_url: str | None,
    workers: int = 2,
    limit: int | None = 50,
    base: Path | None = None,
    deploy: bool = True,
    worker_settings: dict[str, str] | None = None,
):
    """A Prefect server (PostgreSQL at `database_url`, else SQLite) and `workers` process workers.

    Each worker has its own PREFECT_HOME (its own machine, as far as files go); result storage is
    one shared path, and once-locks are in Redis when `redis_url` is given. With `base` the stack
    keeps its state there (the SQLite server's database is `base/server/prefect.db`, result storage
    `base/shared-results`) for a later stack on the same folder; `deploy=False` runs the deployments
    and pool already in the database. `worker_settings` replaces the workers' fast polling (`limit`
    None: no limit, as `make up`'s worker).
    """
    from cli.stack import database_settings, healthy, server_command

    keep = base is not None
    base = base or Path(tempfile.mkdtemp(prefix="hris-scale-"))
    logs, storage, port = base / "logs", base / "shared-results", free_port()
    logs.mkdir(parents=True, exist_ok=True)
    api_url = f"http://127.0.0.1:{port}/api"
    common = {
        "PREFECT_API_URL": api_url,
        "PREFECT_LOCAL_STORAGE_PATH": str(storage),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HRIS_"))} | common
    if redis_url:
        env["HRIS_REDIS_URL"] = redis_url
    stack = Stack(api_url, logs, storage, env)

    def start(name: str, command: list[str], extra: dict[str, str]) -> subprocess.Popen:
        home = base / name
        home.mkdir(exist_ok=True)
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env | {"PREFECT_HOME": str(home)} | extra,
            stdout=(logs / f"{name}.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        stack.processes.append(process)
        return process

    try:
        server = start(
            "server",
            [*server_command(), "--host", "127.0.0.1", "--port", str(port), "--no-ui"],  # as `make up`
            database_settings(database_url) | {"PREFECT_SERVER_API_PORT": str(port)},
        )
        _wait(lambda: healthy(api_url), 240, "Prefect server", server, logs / "server.log")
        if deploy:
            with api(api_url):
                _deploy()
        fast = {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
        limited = ["--limit", str(limit)] if limit else []
        for number in range(1, workers + 1):
            start(
                f"worker-{number}",
                [_prefect(), "worker", "start", "--pool", POOL, "--type", "process", *limited],
                fast if worker_settings is None else worker_settings,
            )
        yield stack
    finally:
        for process in reversed(stack.processes):
            _stop(process)
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


@dataclass
class RunbookStack:
    """A `prefect_stack` whose `default` blocks point at stand-ins: what its runs email and post."""

    stack: Stack
    smtp: Any
    slack: Any | None


@contextmanager
def runbook_stack(database_url: str | None, redis_url: str | None, slack: bool = False, **options: Any):
    """`prefect_stack(database_url, redis_url, **options)` with the SMTP stand-in (and with `slack`
    the Slack one, where gates notify the CSM) saved as its blocks; the body runs inside `api(...)`."""
    from sandbox.slack import SlackStandIn
    from sandbox.smtp import start_smtp

    with prefect_stack(database_url, redis_url, **options) as stack:
        smtp = start_smtp(Path(tempfile.mkdtemp(prefix="hris-load-mail-")), free_port())
        slack_stand_in = SlackStandIn(post_interval=0).start() if slack else None
        try:
            with api(stack.api_url):
                save_smtp_block(smtp.port)
                if slack_stand_in is not None:
                    slack_stand_in.add_channel("am-load")
                    slack_stand_in.add_user("casey@10kc.example")
                    save_slack_block(slack_stand_in.url)
                yield RunbookStack(stack, smtp, slack_stand_in)
        finally:
            for stand_in in filter(None, (smtp, slack_stand_in)):
                stand_in.stop()


@contextmanager
def api(api_url: str):
    """Talk to this stack's API from the calling process (the test session has its own server)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        yield


def _deploy() -> None:
    """The process pool, and setup-guides and the api-integration it starts on it, from this checkout."""
    from prefect.client.orchestration import get_client

    from cli.work_pool import ensure_work_pool
    from flows.api_integration import api_integration
    from flows.setup_guides import setup_guides

    with get_client(sync_client=True) as client:
        ensure_work_pool(client, POOL)  # as `make up`: each run starts as one engine process
    for flow, source in [
        (setup_guides, "flows/setup_guides.py:setup_guides"),
        (api_integration, "flows/api_integration.py:api_integration"),
    ]:
        flow.from_source(str(ROOT), source).deploy(
            name=flow.name, work_pool_name=POOL, print_next_steps=False, build=False, push=False
        )


def save_smtp_block(smtp_port: int) -> None:
    """The `default` SMTP Server block of this stack, pointing at the SMTP stand-in."""
    from blocks import SmtpServer

    SmtpServer(
        host="127.0.0.1",
        port=smtp_port,
        security="none",
        from_address="10KC Customer Success <cs@10kc.example>",
        default_cc=[],
    ).save("default", overwrite=True)


def save_slack_block(slack_url: str) -> None:
    """The `default` Slack block, pointing at the Slack stand-in: gates notify the CSM there."""
    from blocks import SlackWorkspace

    SlackWorkspace(bot_token="xoxb-sandbox", base_url=f"{slack_url}/api/").save("default", overwrite=True)


def save_api_integration_blocks(slack_url: str, workos_url: str) -> None:
    """The Slack and WorkOS blocks api-integration loads, pointing at their stand-ins."""
    from blocks import WorkOSCredentials

    save_slack_block(slack_url)
    WorkOSCredentials(
        api_key="sk_test_sandbox",
        base_url=workos_url,
        setup_links_url="http://127.0.0.1:8765",  # links are signed, not opened, in a load run
        setup_links_secret="scale-secret-0123456789-abcdefghijklmnop",
    ).save("default", overwrite=True)


def customer(number: int, run_tag: str):
    """A distinct customer per run (own domain, own once-keys)."""
    from tasks.customer import Customer

    domain = f"load-{run_tag}-{number:03d}.example"
    return Customer(
        company_name=f"Load Test {number}",
        contact_first_name="Dana",
        contact_email=f"dana.admin@{domain}",
        platform="Workday",
        email_domains=[domain],
        tenant_url="https://load.10kc.example",
        hub_url="https://load.10kc.example/hub/main",
        csm={"name": "Casey Success", "email": "casey@10kc.example"},
        implementation_manager={"name": "Imani Manager", "email": "imani@10kc.example"},
        slack_channel="#am-load",
    )


APPROVE = {"decision": "approve", "approver": "Casey Success"}


def setup_guides_answers(choice: str = "not yet") -> dict[str, dict]:
    """The setup-guides gates answered as a CSM does: approve the email, record the customer's choice."""
    return {
        SETUP_GUIDES_EMAIL: APPROVE,
        CUSTOMER_CHOICE: {"option": choice, "answered_by": "Casey Success"},
    }


@dataclass
class LoadResult:
    """What a load run saw: final states, starts and resumes the API refused, resume→next-gate times."""

    runs: int
    final: Counter
    failed_starts: int
    failed_resumes: int
    resume_to_next: list[float]
    seconds: float
    errors: list[str]

    @property
    def completed(self) -> int:
        return self.final.get("COMPLETED", 0)

    def percentile(self, q: float) -> float:
        values = sorted(self.resume_to_next)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(q * (len(values) - 1)))]

    @property
    def median(self) -> float:
        return statistics.median(self.resume_to_next) if self.resume_to_next else float("nan")


def run_setup_guides(count: int, timeout: float = 600, choice: str = "not yet") -> tuple[list, LoadResult]:
    """Start `count` setup-guides runs at once and answer each gate as soon as its form is there.

    Returns the customers and what happened; call inside `api(...)`.
    """
    from prefect.deployments import run_deployment

    tag = uuid.uuid4().hex[:6]
    customers = [customer(n, tag) for n in range(count)]
    started = time.monotonic()
    ids, failed_starts, errors = [], 0, []
    for c in customers:
        for _attempt in range(5):  # a CSM whose click on Run got an error clicks again
            try:
                run = run_deployment(
                    deployment_name(SETUP_GUIDES),
                    parameters={"customer": c.model_dump()},
                    timeout=0,
                )
            except Exception as exc:
                failed_starts += 1
                errors.append(f"{c.company_name}: start failed: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            ids.append(run.id)
            break
    result = answer_gates(ids, setup_guides_answers(choice), timeout=timeout, started=started)
    result.failed_starts, result.errors = failed_starts, errors + result.errors
    return customers, result


def runs_of(flow_name: str, customers: list) -> list:
    """The ids of `flow_name`'s runs for these customers (started by their flows, not by us)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    domains = {c.email_domains[0] for c in customers}
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))
    return [run.id for run in runs if run.parameters["customer"]["email_domains"][0] in domains]


def answer_gates(
    ids: list, answers: dict[str, dict], timeout: float, stop_at: str = "", started: float | None = None
) -> LoadResult:
    """Answer each run's gates (by pause-key prefix) as soon as its form is saved, until every run
    has ended or waits at `stop_at`; a run at any other gate is an error."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.flow_runs import resume_flow_run
    from prefect.input.actions import read_flow_run_input

    started = started or time.monotonic()
    resumed_at: dict = {}  # run id -> (gate answered, when)
    answered: set = set()  # (run id, pause key) already resumed
    latencies: list[float] = []
    failed_resumes, errors = 0, []
    final: dict = {}
    with get_client(sync_client=True) as client:
        while len(final) < len(ids) and time.monotonic() - started < timeout:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids)
            )
            now = time.monotonic()
            for run in runs:
                state = run.state
                if state is None or run.id in final:
                    continue
                pause_key = state.state_details.pause_key if state.is_paused() else None
                if run.id in resumed_at and (
                    state.is_final() or (pause_key and (run.id, pause_key) not in answered)
                ):
                    latencies.append(now - resumed_at.pop(run.id)[1])
                if state.is_final():
                    final[run.id] = state.type.value
                    if not state.is_completed():
                        errors.append(f"{run.name}: {state.type.value}: {state.message}")
                    continue
                if stop_at and pause_key and pause_key.startswith(stop_at):
                    final[run.id] = f"WAITING AT {stop_at}"
                    continue
                if not pause_key or (run.id, pause_key) in answered:
                    continue
                keyset = state.state_details.run_input_keyset
                if not keyset or read_flow_run_input(keyset["schema"], flow_run_id=run.id) is None:
                    continue  # resume_flow_run would race the schema write
                gate = next((g for g in answers if pause_key.startswith(g)), None)
                if gate is None:
                    errors.append(f"{run.name}: unexpected gate {pause_key}")
                    final[run.id] = "UNEXPECTED-GATE"
                    continue
                try:
                    resume_flow_run(run.id, run_input=answers[gate])
                except Exception as exc:  # a CSM would click Resume again: so do we, next round
                    failed_resumes += 1
                    errors.append(f"{run.name}: resume at {gate} failed: {type(exc).__name__}: {exc}")
                    continue
                answered.add((run.id, pause_key))
                resumed_at[run.id] = (gate, time.monotonic())
            time.sleep(0.2)
    for run_id in set(ids) - set(final):
        final[run_id] = "UNFINISHED"
    return LoadResult(
        len(ids), Counter(final.values()), 0, failed_resumes, latencies, time.monotonic() - started, errors
    )
