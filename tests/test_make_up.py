"""`make up` (hris-runbook up) brings the whole stack up, runs a flow through its worker, stops cleanly."""

from __future__ import annotations

import os
import pty
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from cli.children import Children
from cli.stack import healthy
from tasks.contracts import AUTOMATIONS
from tests.conftest import free_ports, make_customer, wait_until
from tests.test_prefect_yaml import readme_schedules

ROOT = Path(__file__).resolve().parent.parent


# What `up` starts on a free machine.
EVERY_CHILD = {"prefect-server", "sandbox", "warm-start", "worker", "setup-links"}


class Stack:
    """`hris-runbook up` with its output in a pipe, stopped by SIGINT to it alone.

    Started with SIGINT ignored, as a script's background job (`make up &`, nohup) starts it: `up`
    must still stop on SIGINT (Python keeps an inherited "ignore" unless told otherwise)."""

    def __init__(self, env: dict[str, str], *options: str):
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "up", *options],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)

    def alive(self) -> bool:
        return self.process.poll() is None

    def _drain(self) -> None:
        self.reader.join(timeout=30)  # the output ends when the process does
        while not self.lines.empty():
            self.output.append(self.lines.get_nowait())

    @property
    def child_pids(self) -> list[int]:
        """The pid of each process `up` said it started; every one it starts, or the test fails."""
        started = dict(re.findall(r"started (\S+) \(pid (\d+)", "".join(self.output)))
        assert set(started) == EVERY_CHILD, f"up started {sorted(started)}, not {sorted(EVERY_CHILD)}"
        return [int(pid) for pid in started.values()]

    def wait_for(self, text: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.alive(), "up exited early:\n" + "".join(self.output)
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} within {timeout}s:\n" + "".join(self.output))

    def stop(self) -> int:
        """Ctrl-C; the wait is a guard against a hang only (stopping escalates to SIGKILL in seconds)."""
        self.process.send_signal(signal.SIGINT)
        status = self.process.wait(timeout=300)
        self._drain()
        return status


class TerminalStack(Stack):
    """`make up` in a pseudo-terminal, stopped by typing Ctrl-C, as a person does."""

    def __init__(self, env: dict[str, str]):
        self.lines = queue.Queue()
        self.output = []
        pid, self.fd = pty.fork()
        if pid == 0:  # the child: make, leading the terminal's foreground process group
            os.chdir(ROOT)
            os.execvpe("make", ["make", "-o", ".venv/bin/hris-runbook", "up"], env)  # -o: no reinstall
        self.pid, self.status = pid, None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def alive(self) -> bool:
        if self.status is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            self.status = os.waitstatus_to_exitcode(status) if done else None
        return self.status is None

    def _read(self):
        pending = b""
        while True:
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # EIO: every process holding the terminal has gone
                data = b""
            if not data:
                self.lines.put(pending.decode(errors="replace"))
                return
            pending += data
            *complete, pending = pending.split(b"\n")
            for line in complete:
                self.lines.put(line.decode(errors="replace") + "\n")

    def stop(self) -> int:
        os.write(self.fd, b"\x03")  # Ctrl-C: the terminal interrupts its foreground process group
        try:
            wait_until(lambda: not self.alive(), timeout=300, what="make up to stop")  # a hang guard only
        finally:
            if self.alive():
                os.kill(self.pid, signal.SIGKILL)
            self._drain()
            os.close(self.fd)
        return self.status


def _all_gone(pids: list[int]) -> bool:
    """Every process group `up` started (servers, worker, their subprocesses) has ended."""
    for pid in pids:
        try:
            os.killpg(pid, 0)
            return False
        except ProcessLookupError:
            continue
    return True


STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(grandchild.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_stopping_escalates_to_sigkill_and_takes_the_subprocesses_along(tmp_path):
    children = Children()
    stubborn = children.start([sys.executable, "-c", STUBBORN], tmp_path / "stubborn.log")
    grandchild = int(
        wait_until(lambda: (tmp_path / "stubborn.log").read_text().strip(), what="the grandchild")
    )
    children.stop(grace_seconds=0.5)
    assert stubborn.returncode == -signal.SIGKILL  # it ignored SIGTERM, so it was killed
    wait_until(lambda: _all_gone([stubborn.pid]), timeout=60, what="the grandchild to be killed too")
    with pytest.raises(ProcessLookupError):
        os.kill(grandchild, 0)


def test_a_warm_starter_that_exits_is_said_and_the_stack_goes_on_until_a_needed_child_exits(tmp_path, capsys):
    """Runs fall back to a cold start, so the warm starter's exit must not stop `up`;
    the worker's exit still does, named."""
    from cli import stack

    release = tmp_path / "release"
    (tmp_path / "warm.py").write_text("pass\n")
    (tmp_path / "worker.py").write_text(
        f"import pathlib, time\nwhile not pathlib.Path({str(release)!r}).exists():\n    time.sleep(0.1)\n"
    )
    settings = {
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
        "PREFECT_UI_URL": "",
        "PREFECT_HOME": str(tmp_path),
    }
    running = stack._Stack(settings)
    running.start("warm-start", sys.executable, str(tmp_path / "warm.py"), optional=True)
    running.start("worker", sys.executable, str(tmp_path / "worker.py"))
    result: dict = {}
    waiter = threading.Thread(target=lambda: result.update(code=stack._wait(running)), daemon=True)
    waiter.start()
    try:
        wait_until(
            lambda: "warm-start exited (0); runs start cold" in capsys.readouterr().out,
            timeout=120,
            what="up to say the warm starter exited",
        )
        assert waiter.is_alive()  # still waiting on the worker: the stack goes on
        release.touch()
        waiter.join(120)
        assert result["code"] == 1
        stopped = capsys.readouterr().err
        assert "worker.py" in stopped and "warm.py" not in stopped  # the worker is named, not the starter
    finally:
        release.touch()
        running.children.stop(grace_seconds=0.5)


@pytest.fixture
def stack_env(tmp_path):
    port, smtp, slack, sheets, hub, workos, links, internal, sftp = free_ports(9)  # `up` binds them later
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "HRIS_WARM_START"}
    env.update(
        HRIS_PREFECT_PORT=str(port),
        HRIS_STATE_DIR=str(tmp_path / "prefect"),
        HRIS_SANDBOX_DIR=str(tmp_path / "sandbox"),
        HRIS_SANDBOX_SMTP_PORT=str(smtp),
        HRIS_SANDBOX_SLACK_PORT=str(slack),
        HRIS_SANDBOX_SHEETS_PORT=str(sheets),
        HRIS_SANDBOX_HUB_PORT=str(hub),
        HRIS_SANDBOX_WORKOS_PORT=str(workos),
        HRIS_SETUP_LINKS_PORT=str(links),
        HRIS_WEB_INTERNAL_PORT=str(internal),  # the board's listener: 8031 may be another stack's
        HRIS_SANDBOX_SFTP_PORT=str(sftp),
    )
    return env


def _api(env, method, path, **kwargs):
    """Call the stack's Prefect API, retrying 503 as Prefect's own client does.

    The server answers 503 when SQLite is busy with another writer (the worker, the scheduler);
    on 2 busy cores that happens, and it is Prefect's documented "retry me", not a failure.
    """
    url = f"http://127.0.0.1:{env['HRIS_PREFECT_PORT']}/api{path}"
    for attempt in range(1, 6):
        response = httpx.request(method, url, timeout=60, trust_env=False, **kwargs)
        if response.status_code != 503:
            return response
        time.sleep(attempt)
    return response


def _click(env, path, body):
    """A CSM's click in the UI: one request, no retry; `make up`'s server never answers it 503
    "database is locked" (cli/prefect_server.py), even right after it started (issue 22)."""
    url = f"http://127.0.0.1:{env['HRIS_PREFECT_PORT']}/api{path}"
    return httpx.post(url, json=body, timeout=120, trust_env=False)


def _wait_for_every_child(env) -> None:
    """The worker is polling its pool and the setup-links server answers."""

    def worker_online() -> bool:
        workers = _api(env, "POST", "/work_pools/hris-runbook/workers/filter", json={}).json()
        return any(worker["status"] == "ONLINE" for worker in workers)

    wait_until(worker_online, timeout=120, what="the worker to poll the pool")
    links = f"http://127.0.0.1:{env['HRIS_SETUP_LINKS_PORT']}"
    wait_until(lambda: healthy(links), timeout=60, what="the setup-links server")


@pytest.mark.timeout(900)  # two whole stacks on 2 shared cores; every wait inside is on an event
@pytest.mark.slow  # its own Prefect server
def test_up_runs_the_runbook_end_to_end_and_can_be_started_again(stack_env, tmp_path):
    stack = Stack(stack_env)
    try:
        stack.wait_for("hris-runbook is up.")
        automations = _api(stack_env, "POST", "/automations/filter", json={}).json()
        assert sorted(a["name"] for a in automations) == sorted(AUTOMATIONS)  # the server watches the worker
        deployments = _api(stack_env, "POST", "/deployments/filter", json={}).json()
        [deployment] = [d for d in deployments if d["name"] == "setup-guides"]
        assert deployment["work_pool_name"] == "hris-runbook"
        deployed = {  # issue 19: the schedules and one-at-a-time limits the README promises are live
            d["name"]: (
                [
                    s["schedule"]["cron"]
                    for s in d["schedules"]
                    if s["active"] and s["schedule"]["timezone"] == "UTC"
                ],
                (d.get("global_concurrency_limit") or {}).get("limit"),
            )
            for d in deployments
        }
        assert deployed == readme_schedules()

        customer = make_customer(platform="Okta")
        created = _click(  # Submit at once, while the worker and the scheduler start writing
            stack_env,
            f"/deployments/{deployment['id']}/create_flow_run",
            {"parameters": {"customer": customer.model_dump(mode="json")}},
        )
        assert created.status_code == 201, f"{created.status_code}: {created.text}"
        run = created.json()

        def paused_at(gate):
            state = _api(stack_env, "GET", f"/flow_runs/{run['id']}").json()["state"]
            if state["type"] != "PAUSED" or state["state_details"]["pause_key"] != gate:
                return False
            schema_key = state["state_details"]["run_input_keyset"]["schema"]
            return _api(stack_env, "GET", f"/flow_runs/{run['id']}/input/{schema_key}").status_code == 200

        warm_log = tmp_path / "prefect" / "logs" / "warm-start.log"  # issue 24: each Resume is forked warm
        wait_until(
            lambda: warm_log.exists() and "warm start: listening" in warm_log.read_text(),
            timeout=300,
            what="the warm starter to listen",
        )
        warm_line = f"warm start: flow run {run['id']}"
        warm_before = None  # how many of the run's starts were warm before its first Resume
        for gate, answer in [
            ("setup-guides-email", {"decision": "approve", "approver": "Casey"}),
            ("customer-choice", {"option": "api", "answered_by": "Casey"}),
        ]:
            wait_until(lambda gate=gate: paused_at(gate), timeout=300, what=f"gate {gate}")
            if warm_before is None:
                warm_before = warm_log.read_text().count(warm_line)
            resumed = _click(stack_env, f"/flow_runs/{run['id']}/resume", {"run_input": answer})
            assert resumed.status_code == 201, f"{resumed.status_code}: {resumed.text}"
            assert resumed.json()["status"] == "ACCEPT", resumed.text

        wait_until(
            lambda: _api(stack_env, "GET", f"/flow_runs/{run['id']}").json()["state"]["type"] == "COMPLETED",
            timeout=300,
            what="the run to complete on the worker",
        )
        warm_resumes = warm_log.read_text().count(warm_line) - warm_before
        assert warm_resumes == 2, f"{warm_resumes} of the run's two resumes were forked warm"
        mails = list((tmp_path / "sandbox" / "mail").glob("*.eml"))
        assert len(mails) == 1
        assert f"To: {customer.contact_email}" in mails[0].read_text()
        assert (tmp_path / "sandbox" / "sftp").is_dir()  # the sandbox SFTP server's inbox root
        links = f"http://127.0.0.1:{stack_env['HRIS_SETUP_LINKS_PORT']}"
        assert httpx.get(f"{links}/health", trust_env=False, timeout=60).text == "ok"  # setup-links
        assert httpx.get(f"{links}/setup/forged.token", trust_env=False, timeout=60).status_code == 403
        slack_log = (tmp_path / "sandbox" / "slack" / "messages.jsonl").read_text()
        assert "#am-acme" in slack_log and "Waiting for you" in slack_log  # the CSM was told in Slack
    finally:
        assert stack.stop() == 0
    assert "stopping…" in "".join(stack.output) and " exited" not in "".join(stack.output)
    wait_until(lambda: _all_gone(stack.child_pids), timeout=60, what="every process `up` started to end")
    with pytest.raises(httpx.ConnectError):
        _api(stack_env, "GET", "/health")

    again = TerminalStack(stack_env)  # a second `make up`, typed into a terminal, reuses the saved state
    try:
        again.wait_for("hris-runbook is up.")
        _wait_for_every_child(stack_env)  # Ctrl-C then stops a running stack, not one half started
        names = sorted(d["name"] for d in _api(stack_env, "POST", "/deployments/filter", json={}).json())
        declared = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
        assert names == sorted(d["name"] for d in declared)  # updated in place, none twice
        automations = _api(stack_env, "POST", "/automations/filter", json={}).json()
        assert sorted(a["name"] for a in automations) == sorted(AUTOMATIONS)  # none twice either
    finally:
        status = again.stop()
    output = "".join(again.output)
    assert status == 0, output  # make itself exits 0: Ctrl-C reached `up` only, which stopped cleanly
    assert "stopping…" in output and " exited" not in output, output
    assert "Error" not in output and "Traceback" not in output, output  # no "make: *** [up] Error 1"
    wait_until(lambda: _all_gone(again.child_pids), timeout=60, what="every process `up` started to end")
