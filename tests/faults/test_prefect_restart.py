"""A Prefect server restart while a run waits at a gate, as `make up` runs it: a server on SQLite,
the deployment from prefect.yaml, a process worker. The suspended run survives the restart, is
resumed, finishes, and its email goes out once. Its own server: the session's cannot restart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from blocks import SmtpServer
from tests.conftest import free_port, make_customer, wait_until
from tests.gates import answer, read_run, waiting_gate

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


class PrefectStack:
    """A Prefect server and a process worker in subprocesses, on one SQLite database."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.env = dict(
            os.environ,
            PREFECT_HOME=str(folder / "home"),
            PREFECT_API_URL=self.api_url,
            PREFECT_LOCAL_STORAGE_PATH=str(folder / "storage"),
            PREFECT_UI_ENABLED="false",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_WORKER_QUERY_SECONDS="2",
            HRIS_RUNBOOK_DIR=str(ROOT),
        )
        self.server: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def _start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("a")
        return subprocess.Popen(
            [PREFECT, *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start_server(self) -> None:
        self.server = self._start(
            "server", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)
        )
        wait_until(self._healthy, timeout=180, interval=0.5, what="the Prefect server")

    def stop_server(self) -> None:
        _stop(self.server)
        assert not self._healthy()

    def deploy_and_start_worker(self) -> None:
        with get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name="hris-runbook", type="process"))
        deploy = subprocess.run(
            [PREFECT, "--no-prompt", "deploy", "--name", "setup-guides"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        assert deploy.returncode == 0, deploy.stdout[-2000:] + deploy.stderr[-2000:]
        self.worker = self._start("worker", "worker", "start", "--pool", "hris-runbook")

    def stop(self) -> None:
        _stop(self.worker)
        _stop(self.server)


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def stack(tmp_path):
    stack = PrefectStack(tmp_path)
    try:
        stack.start_server()
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            yield stack
    finally:
        stack.stop()


@pytest.mark.timeout(900)  # two server starts and three flow-run processes: minutes on a busy 2-core box
@pytest.mark.slow  # its own Prefect server
def test_a_run_suspended_at_a_gate_survives_a_server_restart_and_sends_once(stack, smtp_server):
    SmtpServer(host="127.0.0.1", port=smtp_server.port, security="none", from_address="cs@10kc.example").save(
        "default", overwrite=True
    )
    stack.deploy_and_start_worker()
    customer = make_customer(platform="BambooHR")
    run = run_deployment(
        "setup-guides/setup-guides",
        parameters={"customer": customer.model_dump()},
        timeout=0,
    )
    assert waiting_gate(run.id, timeout=120) == "setup-guides-email"
    assert read_run(run.id).state.name == "Suspended"

    stack.stop_server()  # the worker keeps polling a server that is gone
    stack.start_server()  # same database
    assert read_run(run.id).state.name == "Suspended"

    answer(run.id, "setup-guides-email", decision="approve", approver="Casey Success")
    answer(run.id, "customer-choice", option="not yet", answered_by="Casey Success")
    final = wait_until(lambda: (s := read_run(run.id).state).is_final() and s, timeout=120, what="run end")
    assert final.is_completed(), final.message
    [message] = smtp_server.handler.messages()
    assert message["To"] == customer.contact_email
    assert stack.worker.poll() is None, "the worker must outlive a server restart"
