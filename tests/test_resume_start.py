"""A CSM's Resume starts a new flow-run process (issue 24): what it imports before the flow runs
again is part of the CSM's wait, and the benchmark reads that wait from Prefect's state history."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prefect.states import Completed, Paused, Pending, Running, Scheduled

from benchmarks.resume import resumes
from cli.work_pool import ensure_work_pool, process_pool_template

ROOT = Path(__file__).resolve().parent.parent

LOADED = """
import sys
import flows.setup_guides
heavy = ("workos", "gspread", "google.oauth2", "paramiko", "numpy", "pyarrow")
print(sorted(name for name in sys.modules if name.split(".")[0] in heavy or name.startswith(heavy)))
"""


def test_a_resumed_setup_guides_run_imports_no_sdk_it_does_not_use():
    """The WorkOS SDK, gspread with google-auth and paramiko took ~1 s of CPU in every flow-run process
    (blocks/ imported them at the top); numpy and pyarrow ~0.17 s more (the customer's address check
    and the once-records' mapping table imported the file engine's column code). Setup-guides uses
    none of them, so none is loaded."""
    done = subprocess.run([sys.executable, "-c", LOADED], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_blocks_still_build_their_clients_on_first_use():
    """The SDKs are imported where a client is made: each block still gives a working one."""
    from blocks.workos import WorkOSCredentials

    client = WorkOSCredentials(api_key="sk_test_x", base_url="http://127.0.0.1:9/").get_client()
    assert type(client).__name__ == "WorkOSClient"
    from tasks.private_apis import WorkOSConnectionError, WorkOSTimeoutError

    assert issubclass(WorkOSConnectionError, Exception) and issubclass(WorkOSTimeoutError, Exception)


def _worker_configuration(template: dict):
    """The job configuration the process worker builds for a flow run on a pool with `template` (it
    asks the API for the block references a template may hold)."""
    import asyncio
    from uuid import uuid4

    from prefect.client.schemas.objects import FlowRun
    from prefect.workers.process import ProcessJobConfiguration

    configuration = asyncio.run(ProcessJobConfiguration.from_template_and_values(template, {}))
    configuration.prepare_for_flow_run(FlowRun(flow_id=uuid4()))
    return configuration


def test_a_resumed_run_starts_as_one_engine_process_of_the_runbook_interpreter(prefect_api):
    """Without a command, Prefect 3.9's process worker starts each run as a workspace supervisor that
    imports Prefect, reads the run and runs the pull step, then execs a second interpreter for the
    engine: ~1 s of CPU more per Resume. The runbook's pool starts the engine directly (the worker
    takes its command branch only for a command the pool set), with the runbook's own interpreter."""
    from prefect.utilities.processutils import command_from_string
    from prefect.workers.process import ProcessWorker

    configuration = _worker_configuration(process_pool_template())
    assert command_from_string(configuration.command) == [sys.executable, "-m", "prefect.engine"]
    assert configuration._command_configured  # ProcessWorker.run: EngineCommandStarter, no supervisor
    prefect_default = _worker_configuration(ProcessWorker.get_default_base_job_template())
    assert not prefect_default._command_configured  # what the old pool gave: the supervisor first


def test_make_ups_pool_gets_the_engine_command_and_keeps_what_an_operator_set(prefect_api):
    """A pool made before this change gets the command on the next `make up`; what an operator set
    on it (paused, a concurrency limit, an environment, their own command) stays, and a pool of
    another type is left alone."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.workers.process import ProcessWorker

    def command_of(pool) -> str | None:
        return pool.base_job_template["variables"]["properties"]["command"].get("default")

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="fast-start-old", type="process"))
        client.update_work_pool("fast-start-old", WorkPoolUpdate(is_paused=True, concurrency_limit=3))
        template = ProcessWorker.get_default_base_job_template()
        template["variables"]["properties"]["env"]["default"] = {"HRIS_FILES_DIR": "/srv/files"}
        client.update_work_pool("fast-start-old", WorkPoolUpdate(base_job_template=template))
        for name in ("fast-start-old", "fast-start-new"):
            assert ensure_work_pool(client, name) in ("command set", "created")
            pool = client.read_work_pool(name)
            assert command_of(pool) == command_of_template(process_pool_template())
            assert _worker_configuration(pool.base_job_template)._command_configured
            assert ensure_work_pool(client, name) == "unchanged"
        old = client.read_work_pool("fast-start-old")
        assert old.is_paused and old.concurrency_limit == 3
        assert old.base_job_template["variables"]["properties"]["env"]["default"] == {
            "HRIS_FILES_DIR": "/srv/files"
        }

        theirs = "/opt/runbook/.venv/bin/python -m prefect.engine --their-flag"
        template = old.base_job_template
        template["variables"]["properties"]["command"]["default"] = "/usr/local/bin/start-run"
        client.update_work_pool("fast-start-old", WorkPoolUpdate(base_job_template=template))
        assert ensure_work_pool(client, "fast-start-old") == "the operator's command kept"
        assert command_of(client.read_work_pool("fast-start-old")) == "/usr/local/bin/start-run"
        template["variables"]["properties"]["command"]["default"] = theirs  # another machine's venv
        client.update_work_pool("fast-start-old", WorkPoolUpdate(base_job_template=template))
        assert ensure_work_pool(client, "fast-start-old") == "the operator's command kept"
        assert command_of(client.read_work_pool("fast-start-old")) == theirs

        client.create_work_pool(WorkPoolCreate(name="fast-start-docker", type="docker-like"))
        before = client.read_work_pool("fast-start-docker").base_job_template
        assert ensure_work_pool(client, "fast-start-docker") == "a docker-like pool: left as it is"
        assert client.read_work_pool("fast-start-docker").base_job_template == before


def command_of_template(template: dict) -> str | None:
    return template["variables"]["properties"]["command"].get("default")


def _at(state, seconds: float):
    state.timestamp = datetime(2026, 12, 6, tzinfo=UTC) + timedelta(seconds=seconds)
    return state


def test_the_benchmark_reads_each_resume_from_the_state_history():
    """Resuming → Pending → Running → the next gate (or the end), twice; a resume still going is not counted."""
    history = [
        _at(Running(), 0),
        _at(Paused(pause_key="email"), 1),
        _at(Scheduled(name="Resuming"), 10),
        _at(Pending(), 10.5),
        _at(Running(), 12),
        _at(Paused(pause_key="choice"), 13),
        _at(Scheduled(name="Resuming"), 20),
        _at(Pending(), 21),
        _at(Running(), 22),
        _at(Completed(), 24),
        _at(Scheduled(name="Resuming"), 30),  # a third one, not picked up yet
    ]
    assert resumes(list(reversed(history))) == [
        {"running": 2.0, "next": 3.0, "pickup": 0.5, "start": 1.5, "flow": 1.0},
        {"running": 2.0, "next": 4.0, "pickup": 1.0, "start": 1.0, "flow": 2.0},
    ]
