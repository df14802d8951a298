"""The warm starter (issue 24): a resumed run's engine is forked from a process with Prefect loaded
(cli/warm_start.py) by the pool's command (cli/warm_run.py), which starts cold when it cannot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from cli.warm_start import flow_run_command, server_command, socket_path
from cli.work_pool import set_pool_command
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
NOT_A_RUN = "not-a-flow-run-id"


@contextmanager
def warm_starter(base: Path, env: dict[str, str]):
    """A warm starter on base/warm-start.sock; yields (socket path, its log file)."""
    path, log = socket_path(base), base / "warm-start.log"
    with log.open("ab") as out:
        process = subprocess.Popen(server_command(path), cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        wait_until(
            lambda: "listening" in log.read_text() or process.poll() is not None, 180, what="warm starter"
        )
        assert process.poll() is None, log.read_text()
        yield path, log, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


def launch(path: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """The pool's command as the worker runs it: the flow run's id in the environment."""
    return subprocess.run(
        [sys.executable, "-m", "cli.warm_run", path],
        cwd=cwd,
        env=os.environ | {"PREFECT__FLOW_RUN_ID": NOT_A_RUN} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def starter(tmp_path_factory):
    base = tmp_path_factory.mktemp("warm")
    with warm_starter(base, dict(os.environ)) as started:
        yield started


def forks(log: Path, run_id: str) -> int:
    return log.read_text().count(f"flow run {run_id}: engine pid")


@pytest.mark.slow  # the starter imports what the flows import (~10-20 s on a busy machine)
def test_the_engine_is_forked_with_the_launchers_streams_and_exit_code(starter, tmp_path):
    """The engine's own error for a bad run id reaches the launcher's stderr, and its exit code is
    the launcher's; the starter forked it (its log counts it)."""
    path, log, _ = starter
    before = forks(log, NOT_A_RUN)
    done = launch(path, tmp_path)
    assert done.returncode == 1
    assert "Invalid flow run id" in done.stderr
    assert forks(log, NOT_A_RUN) == before + 1


def test_without_a_starter_the_launcher_starts_the_engine_cold(tmp_path):
    """No socket (the starter down, or killed leaving its socket file): `python -m prefect.engine`."""
    (tmp_path / "dead.sock").touch()
    for path in (str(tmp_path / "none.sock"), str(tmp_path / "dead.sock")):
        done = launch(path, tmp_path)
        assert done.returncode == 1
        assert "Invalid flow run id" in done.stderr


@pytest.mark.slow
def test_a_request_a_new_interpreter_would_start_differently_starts_cold(starter, tmp_path):
    """Another PYTHONPATH changes what a new interpreter imports: declined, started cold."""
    path, log, _ = starter
    before = forks(log, NOT_A_RUN)
    done = launch(path, tmp_path, PYTHONPATH=str(tmp_path))
    assert done.returncode == 1 and "Invalid flow run id" in done.stderr
    assert forks(log, NOT_A_RUN) == before


SLEEPY = """
import time

from prefect import flow


@flow
def sleepy(seconds: float = 0):
    print("sleepy started", flush=True)
    time.sleep(seconds)
    return seconds
"""


@pytest.fixture(scope="module")
def warm_stack(tmp_path_factory):
    """A process worker on its own server, its pool's command the launcher, a warm starter whose own
    environment points at no server (so a run that completes took the launcher's settings), and a
    deployment of a flow that sleeps."""
    from prefect import flow

    from benchmarks import scale

    base, flows = tmp_path_factory.mktemp("stack"), tmp_path_factory.mktemp("flows")
    (flows / "sleepy.py").write_text(textwrap.dedent(SLEEPY))
    worker = {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_HEARTBEAT_SECONDS": "5"}
    with scale.prefect_stack(None, None, workers=1, limit=None, worker_settings=worker) as stack:
        elsewhere = stack.env | {"PREFECT_API_URL": "http://127.0.0.1:9/api", "PREFECT_HOME": str(base)}
        with scale.api(stack.api_url), warm_starter(base, elsewhere) as (path, log, process):
            set_pool_command(scale.POOL, flow_run_command(path))
            flow.from_source(str(flows), "sleepy.py:sleepy").deploy(
                name="sleepy", work_pool_name=scale.POOL, print_next_steps=False, build=False, push=False
            )
            time.sleep(7)  # the worker takes the pool's template on its next heartbeat (5 s)
            yield stack, path, log, process


def run_sleepy(seconds: float):
    from prefect.deployments import run_deployment

    return run_deployment("sleepy/sleepy", parameters={"seconds": seconds}, timeout=0)


def final_state(run_id, timeout: float = 180):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return wait_until(
            lambda: (s := client.read_flow_run(run_id).state) and s.is_final() and s, timeout, what="final"
        )


@pytest.mark.slow
def test_a_deployment_run_completes_through_the_warm_start(warm_stack):
    stack, _path, log, _ = warm_stack
    run = run_sleepy(0)
    assert final_state(run.id).is_completed()
    assert forks(log, str(run.id)) == 1
    assert "sleepy started" in stack.log_text()  # the flow's output reached the worker's stream


@pytest.mark.slow
def test_cancelling_a_warm_started_run_stops_its_engine(warm_stack):
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    _stack, _path, log, _ = warm_stack
    run = run_sleepy(600)
    with get_client(sync_client=True) as client:
        wait_until(lambda: client.read_flow_run(run.id).state.is_running(), 120, what="running")
        line = wait_until(lambda: forks(log, str(run.id)) and log.read_text(), 30, what="forked")
        pid = int(line.split(f"flow run {run.id}: engine pid ")[1].split()[0])
        client.set_flow_run_state(run.id, Cancelling(), force=True)
    assert final_state(run.id, 120).is_cancelled()
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), 60, what="engine gone")


@pytest.mark.slow
def test_a_killed_starter_leaves_runs_starting_cold(warm_stack):
    """Runs after the starter was killed (its socket file left behind) start cold and complete."""
    _stack, path, log, process = warm_stack
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    assert Path(path).exists()
    run = run_sleepy(0)
    assert final_state(run.id).is_completed()
    assert forks(log, str(run.id)) == 0
