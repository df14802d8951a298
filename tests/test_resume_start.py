"""A CSM's Resume starts a new flow-run process (issue 24): what it imports before the flow runs
again is part of the CSM's wait, and the benchmark reads that wait from Prefect's state history."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prefect.states import Completed, Paused, Pending, Running, Scheduled

from benchmarks.resume import resumes

ROOT = Path(__file__).resolve().parent.parent

LOADED = """
import sys
import flows.setup_guides
heavy = ("workos", "gspread", "google.oauth2", "paramiko")
print(sorted(name for name in sys.modules if name.split(".")[0] in heavy or name.startswith(heavy)))
"""


def test_a_resumed_setup_guides_run_imports_no_sdk_it_does_not_use():
    """The WorkOS SDK, gspread with google-auth and paramiko took ~1 s of CPU in every flow-run process
    (blocks/ imported them at the top); setup-guides uses none of them, so none is loaded."""
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
