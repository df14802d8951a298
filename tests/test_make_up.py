"""`make up` (hris-runbook up) brings the whole stack up, runs a flow through its worker, stops cleanly."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import free_port, make_customer, wait_until

ROOT = Path(__file__).resolve().parent.parent


class Stack:
    def __init__(self, env: dict[str, str]):
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "up"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.process.poll() is None, "up exited early:\n" + "".join(self.output)
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} within {timeout}s:\n" + "".join(self.output))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)


@pytest.fixture
def stack_env(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        HRIS_PREFECT_PORT=str(port),
        HRIS_STATE_DIR=str(tmp_path / "prefect"),
        HRIS_SANDBOX_DIR=str(tmp_path / "sandbox"),
        HRIS_SANDBOX_SMTP_PORT=str(free_port()),
        HRIS_SANDBOX_SLACK_PORT=str(free_port()),
        HRIS_SANDBOX_SHEETS_PORT=str(free_port()),
        HRIS_SANDBOX_HUB_PORT=str(free_port()),
        HRIS_SANDBOX_WORKOS_PORT=str(free_port()),
        HRIS_SETUP_LINKS_PORT=str(free_port()),
        HRIS_SANDBOX_SFTP_PORT=str(free_port()),
    )
    return env


def _api(env, method, path, **kwargs):
    """Call the stack's Prefect API, retrying 503 as Prefect's own client does.

    The server answers 503 when SQLite is busy with another writer (the worker, the scheduler);
    on 2 busy cores that happens, and it is Prefect's documented "retry me", not a failure.
    """
    url = f"http://127.0.0.1:{env['HRIS_PREFECT_PORT']}/api{path}"
    for attempt in range(1, 6):
        response = httpx.request(method, url, timeout=10, trust_env=False, **kwargs)
        if response.status_code != 503:
            return response
        time.sleep(attempt)
    return response


def test_up_runs_the_runbook_end_to_end_and_can_be_started_again(stack_env, tmp_path):
    stack = Stack(stack_env)
    try:
        stack.wait_for("hris-runbook is up.")
        deployments = _api(stack_env, "POST", "/deployments/filter", json={}).json()
        [deployment] = [d for d in deployments if d["name"] == "setup-guides"]
        assert deployment["work_pool_name"] == "hris-runbook"

        customer = make_customer(platform="Okta")
        created = _api(
            stack_env,
            "POST",
            f"/deployments/{deployment['id']}/create_flow_run",
            json={"parameters": {"customer": customer.model_dump(mode="json")}},
        )
        assert created.status_code == 201, f"{created.status_code}: {created.text}"
        run = created.json()

        def paused_at(gate):
            state = _api(stack_env, "GET", f"/flow_runs/{run['id']}").json()["state"]
            if state["type"] != "PAUSED" or state["state_details"]["pause_key"] != gate:
                return False
            schema_key = state["state_details"]["run_input_keyset"]["schema"]
            return _api(stack_env, "GET", f"/flow_runs/{run['id']}/input/{schema_key}").status_code == 200

        for gate, answer in [
            ("setup-guides-email", {"decision": "approve", "approver": "Casey"}),
            ("customer-choice", {"option": "api", "answered_by": "Casey"}),
        ]:
            wait_until(lambda gate=gate: paused_at(gate), timeout=120, what=f"gate {gate}")
            resumed = _api(stack_env, "POST", f"/flow_runs/{run['id']}/resume", json={"run_input": answer})
            assert resumed.status_code == 201, f"{resumed.status_code}: {resumed.text}"
            assert resumed.json()["status"] == "ACCEPT", resumed.text

        wait_until(
            lambda: _api(stack_env, "GET", f"/flow_runs/{run['id']}").json()["state"]["type"] == "COMPLETED",
            timeout=120,
            what="the run to complete on the worker",
        )
        mails = list((tmp_path / "sandbox" / "mail").glob("*.eml"))
        assert len(mails) == 1
        assert f"To: {customer.contact_email}" in mails[0].read_text()
        assert (tmp_path / "sandbox" / "sftp").is_dir()  # the sandbox SFTP server's inbox root
        links = f"http://127.0.0.1:{stack_env['HRIS_SETUP_LINKS_PORT']}"
        assert httpx.get(f"{links}/health", trust_env=False).text == "ok"  # hris-runbook setup-links
        assert httpx.get(f"{links}/setup/forged.token", trust_env=False).status_code == 403
        slack_log = (tmp_path / "sandbox" / "slack" / "messages.jsonl").read_text()
        assert "#am-acme" in slack_log and "Waiting for you" in slack_log  # the CSM was told in Slack
    finally:
        assert stack.stop() == 0

    with pytest.raises(httpx.ConnectError):
        _api(stack_env, "GET", "/health")

    again = Stack(stack_env)  # a second `make up` reuses the saved state
    try:
        again.wait_for("hris-runbook is up.")
        names = sorted(d["name"] for d in _api(stack_env, "POST", "/deployments/filter", json={}).json())
        declared = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
        assert names == sorted(d["name"] for d in declared)  # updated in place, none twice
    finally:
        assert again.stop() == 0
