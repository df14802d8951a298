"""A throwaway multi-worker stack like `make up`'s: for the scale tests, `make bench-load` and
`make bench-resume`.

A Prefect server runs on PostgreSQL or SQLite (the databases and Redis: `services.py`); process
workers, each with its own PREFECT_HOME, share only what several machines would share: the API,
result storage, Redis. The CSM who answers its runs' gates is `load_driver.py`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.services import free_port, stop, wait_ready

ROOT = Path(__file__).resolve().parent.parent
POOL = "hris-scale"


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
        wait_ready(lambda: healthy(api_url), 240, "Prefect server", server, logs / "server.log")
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
            stop(process)
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
