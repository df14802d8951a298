"""Once-only steps survive a worker killed inside them: the lock expires or is taken over, and the
side effect still happens exactly once."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent


def start_step(key: str, out: Path, *flags: str, **env: str) -> subprocess.Popen:
    """The step in its own process, on the session's Prefect server (never a server of its own)."""
    from prefect.settings import PREFECT_API_URL

    return subprocess.Popen(
        [sys.executable, "-m", "tests.once_step", key, str(out), *flags],
        cwd=ROOT,
        env=dict(os.environ, PREFECT_API_URL=PREFECT_API_URL.value(), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def lock_file(key: str) -> Path:
    from prefect.settings import PREFECT_HOME

    from tasks.once import record_key

    return PREFECT_HOME.value() / "locks" / f"{record_key(key)}.lock"


@pytest.fixture
def killed_inside_step(prefect_api, tmp_path):
    """A step whose process was killed (SIGKILL) while it held the step's lock."""
    key = f"once--lock-test-{uuid.uuid4().hex[:8]}--send"
    holder = start_step(key, tmp_path, "--block", HRIS_LOCK_HOLD_SECONDS="600")
    wait_until(lambda: lines(tmp_path / "started") == 1, timeout=180, what="the step to start")
    assert json.loads(lock_file(key).read_text())["pid"] == holder.pid
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(60)
    assert lines(tmp_path / "sent") == 0
    return key, tmp_path


def test_a_step_killed_inside_its_lock_runs_once_on_the_next_run(killed_inside_step):
    key, out = killed_inside_step
    code, output = finish(start_step(key, out))  # the lock says 600 s, but its process is gone
    assert code == 0, output
    assert lines(out / "sent") == 1
    code, output = finish(start_step(key, out))  # and a later run finds the step done
    assert code == 0, output
    assert lines(out / "sent") == 1 and lines(out / "started") == 2


def step_runs(key: str) -> list:
    """The once-step flow runs of this key (oldest first), with their task runs' states."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["once-step"])), sort=FlowRunSort.START_TIME_ASC
        )
        runs = [run for run in runs if run.parameters.get("once_key") == key]
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id for run in runs]))
        )
    return [(run, [t.state.type.value for t in tasks if t.flow_run_id == run.id]) for run in runs]


def test_a_lock_left_on_another_machine_expires_after_the_hold_timeout(killed_inside_step):
    from datetime import UTC, datetime

    key, out = killed_inside_step
    path = lock_file(key)

    def lock_expiring_at(moment: float) -> None:
        record = json.loads(path.read_text())  # as if the killed worker ran on another machine
        record.update(host="another-worker", expiration=str(datetime.fromtimestamp(moment, UTC)))
        path.write_text(json.dumps(record))

    lock_expiring_at(time.time() + 600)
    [(holder, _)] = step_runs(key)
    waiter = start_step(key, out)
    try:
        # the waiter started its step (its task run is Running) and now waits on the lock
        wait_until(
            lambda: (
                waiter.poll() is not None
                or lines(out / "sent")
                or any(r.id != holder.id and "RUNNING" in tasks for r, tasks in step_runs(key))
            ),
            timeout=180,
            what="the second run to reach the locked step",
        )
        assert waiter.poll() is None and lines(out / "sent") == 0, "the step ran through the lock"
        expires = time.time() + 3
        lock_expiring_at(expires)  # still held by nobody alive here: only expiry frees it
        code, output = finish(waiter)
    finally:
        waiter.kill()
    assert code == 0, output
    assert lines(out / "sent") == 1
    # A file's mtime comes from the kernel's coarse clock (up to a tick behind time.time()); a lock
    # taken when it was rewritten would have sent 3 s early.
    assert (out / "sent").stat().st_mtime >= expires - 1, "the lock was taken before it expired"


def test_a_step_locked_by_a_live_run_fails_after_the_acquire_timeout_naming_the_holder(prefect_api, tmp_path):
    key = f"once--lock-test-{uuid.uuid4().hex[:8]}--send"
    holder = start_step(key, tmp_path, "--block")
    try:
        wait_until(lambda: lines(tmp_path / "started") == 1, timeout=180, what="the step to start")
        code, output = finish(start_step(key, tmp_path, HRIS_LOCK_ACQUIRE_SECONDS="1"))
    finally:
        holder.kill()
        holder.wait(60)
    assert code == 1
    assert f"once-step {key}.json is still locked after 1s by run" in output
    assert f"(process {holder.pid} on " in output
    assert "If that run is still working, let it finish" in output
    assert lines(tmp_path / "sent") == 0 and lines(tmp_path / "started") == 1


def test_a_step_slower_than_its_hold_time_keeps_its_lock_and_runs_once(prefect_api, tmp_path):
    """Issue 20: the lock was held HRIS_LOCK_HOLD_SECONDS without renewal, so a second run took it
    over from a live, slow step and acted again. Now the step's process renews it while it runs."""
    key = f"once--lock-test-{uuid.uuid4().hex[:8]}--send"
    slow = start_step(key, tmp_path, "--slow", HRIS_LOCK_HOLD_SECONDS="2")
    try:
        wait_until(lambda: lines(tmp_path / "started") == 1, timeout=180, what="the slow step to start")
        first_expiry = json.loads(lock_file(key).read_text())["expiration"]
        [(first_run, _)] = step_runs(key)
        second = start_step(key, tmp_path, HRIS_LOCK_HOLD_SECONDS="2")
        wait_until(  # its task run is Running: it waits on the lock (as in the test above)
            lambda: any(r.id != first_run.id and "RUNNING" in tasks for r, tasks in step_runs(key)),
            timeout=180,
            what="the second run to reach the locked step",
        )
        # Three hold times while the second run waits: an unrenewed lock expires and is taken over.
        deadline = time.monotonic() + 6
        wait_until(lambda: time.monotonic() > deadline, timeout=30, what="three hold times")
        assert lines(tmp_path / "started") == 1  # the second run waits for the lock
        assert json.loads(lock_file(key).read_text())["expiration"] > first_expiry  # renewed
        (tmp_path / "go").touch()
        assert finish(slow)[0] == 0
        code, output = finish(second)
    finally:
        slow.kill()
    assert code == 0, output
    assert lines(tmp_path / "sent") == 1 and lines(tmp_path / "started") == 1
    assert not lock_file(key).exists()  # released, not left behind by the renewal


def test_lock_timeouts_that_are_not_numbers_are_a_clear_error(monkeypatch):
    from tasks.once import lock_timeouts

    monkeypatch.setenv("HRIS_LOCK_HOLD_SECONDS", "ten minutes")
    with pytest.raises(
        ValueError, match="HRIS_LOCK_HOLD_SECONDS: expected a number of seconds, got 'ten minutes'"
    ):
        lock_timeouts()
    monkeypatch.setenv("HRIS_LOCK_HOLD_SECONDS", "0")
    with pytest.raises(ValueError, match="HRIS_LOCK_HOLD_SECONDS: must be more than 0 seconds"):
        lock_timeouts()


def test_a_step_that_outlives_its_lock_is_not_failed_when_it_releases_it(tmp_path, caplog):
    from tasks.once import ExpiringFileLocks

    locks = ExpiringFileLocks(tmp_path, hold_seconds=0.2, acquire_seconds=5)
    assert locks.acquire_lock("once--slow--step", holder="run-1")
    wait_until(lambda: not locks.is_locked("once--slow--step"), timeout=10, what="the lock to expire")
    assert locks.acquire_lock("once--slow--step", holder="run-2")  # a waiter takes it over
    locks.release_lock("once--slow--step", holder="run-1")  # the slow step ends: logged, not raised
    assert "took longer than its lock (HRIS_LOCK_HOLD_SECONDS=0)" in caplog.text
    assert locks.is_lock_holder("once--slow--step", "run-2")


def test_steps_of_customers_whose_domains_share_a_stem_never_share_a_lock(tmp_path):
    """Prefect's lock path cut keys at their last dot: acme.com's and acme.io's steps waited for each other."""
    from tasks.once import ExpiringFileLocks

    locks = ExpiringFileLocks(tmp_path, hold_seconds=60, acquire_seconds=1)
    assert locks.acquire_lock("once--acme.com--setup-guides-email.json", holder="run-1")
    assert locks.acquire_lock("once--acme.io--api-support-request.json", holder="run-2")
    assert len(list(tmp_path.glob("*.lock"))) == 2


def test_a_redis_lock_is_renewed_only_by_the_process_holding_it():
    """With HRIS_REDIS_URL the renewal resets the TTL of this process's lock, never another's."""
    import shutil
    import socket

    if shutil.which("redis-server") is None or importlib.util.find_spec("prefect_redis") is None:
        pytest.skip("needs redis-server and prefect-redis ('hris-runbook[scale]')")
    from benchmarks.services import redis
    from tasks.once import redis_locks

    with redis() as url:
        locks = redis_locks(url, hold_seconds=60, acquire_seconds=5)
        mine = f"{socket.gethostname()}:{os.getpid()}:1:MainThread"
        assert locks.acquire_lock("once--acme.com--step.json", holder=mine)
        assert locks.acquire_lock("once--acme.com--other.json", holder="another-host:1:1:MainThread")

        def ttl(key: str) -> int:
            return locks.client.pttl(locks._lock_name_for_key(f"once--acme.com--{key}.json"))

        # Seconds of the hold time pass (no interval raced: the renewal is compared with them)
        wait_until(lambda: ttl("step") < 57_000, what="three seconds of the hold time to pass")
        before = {key: ttl(key) for key in ("step", "other")}
        assert locks.renew("once--acme.com--step.json")
        assert not locks.renew("once--acme.com--other.json")
        assert ttl("step") > before["step"]  # renewed: back towards 60 s
        assert 0 < ttl("other") <= before["other"]  # left to run down
