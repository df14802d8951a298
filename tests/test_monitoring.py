"""Watching the watcher: the Prefect server itself alerts #monitoring-hris-files, through the
`hris-monitoring` notification block, when sftp-watch stops completing, the worker goes away, or a run
crashes; our own worker plays no part in it.

The session's test server runs without the proactive-triggers and foreman services, so this test
starts a Prefect server of its own, with every service, on a free port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def full_server(tmp_path):
    """`prefect server start` with its services (triggers, actions, foreman every second); its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_UI_URL": f"http://127.0.0.1:{port}",  # as `make up` sets it: the alerts' links
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_FOREMAN_LOOP_SECONDS": "1",
        "PREFECT_SERVER_SERVICES_FOREMAN_INACTIVITY_HEARTBEAT_MULTIPLE": "2",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    from cli.stack import healthy

    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthy(f"{url}/api") or server.poll() is not None, timeout=180, what="the server")
        assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        yield url, env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_server_alerts_when_sftp_watch_is_silent_the_worker_stops_or_a_run_crashes(
    full_server, slack, tmp_path
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings
    from prefect.states import Crashed

    from cli.monitoring import WORK_POOL, ensure_automations
    from sandbox.blocks import webhook_notification_block

    url, env = full_server
    channel = "monitoring-hris-files"

    def posted(text: str) -> list[str]:
        return [m["text"] for m in slack.messages(channel) if text in m["text"]]

    with temporary_settings({PREFECT_API_URL: f"{url}/api", PREFECT_UI_URL: url}):
        with get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
            flow_id = client.create_flow_from_name("sftp-watch")
            deployment_id = client.create_deployment(
                flow_id=flow_id, name="sftp-watch", work_pool_name=WORK_POOL
            )
        webhook_notification_block(slack.incoming_webhook(channel)).save("hris-monitoring")
        assert ensure_automations(window_seconds=10).startswith("monitoring: 3 automations")
        assert ensure_automations(window_seconds=10)  # run again (a second `up`): updated, not duplicated
        with get_client(sync_client=True) as client:
            assert len(client.read_automations()) == 3

        # (a) no worker ever started: sftp-watch never completes, and the window passes
        wait_until(
            lambda: posted("sftp-watch has not completed for 10 seconds"), timeout=120, what="silent alert"
        )
        assert f"{url}/deployments/deployment/{deployment_id}" in posted("sftp-watch has not completed")[0]
        assert all(m.get("via") == "webhook" for m in slack.messages(channel))

        # (b) a worker comes up, then is stopped: the pool has no healthy worker
        worker_env = env | {"PREFECT_API_URL": f"{url}/api", "PREFECT_WORKER_HEARTBEAT_SECONDS": "1"}
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "prefect"), "worker", "start", "--pool", WORK_POOL],
            cwd=tmp_path,
            env=worker_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            with get_client(sync_client=True) as client:
                wait_until(
                    lambda: client.read_work_pool(WORK_POOL).status.value == "READY",
                    timeout=120,
                    what="worker",
                )
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        wait_until(lambda: posted("has no healthy worker"), timeout=120, what="no-worker alert")
        assert len(posted("has no healthy worker")) == 1

        # (c) a run crashes (set through the API, as the worker does when the process dies)
        with get_client(sync_client=True) as client:
            run = client.create_flow_run_from_deployment(deployment_id, name="crashed-on-purpose")
            client.set_flow_run_state(run.id, Crashed(message="process exited"), force=True)
        wait_until(lambda: posted("crashed-on-purpose"), timeout=120, what="crash alert")
        (alert,) = posted("crashed-on-purpose")
        assert alert.startswith(
            "*:boom: flow run crashed-on-purpose crashed*\nsftp-watch run crashed-on-purpose"
        )
        assert f"{url}/runs/flow-run/{run.id}" in alert


def test_the_slack_stand_in_takes_what_the_notification_block_sends_as_slack_does(slack):
    """An incoming webhook posts into its one channel; a wrong URL or an empty message is refused with
    Slack's own answers, so a misconfigured block fails as it would against Slack."""
    import httpx

    from sandbox.blocks import webhook_notification_block

    url = slack.incoming_webhook("monitoring-hris-files")
    webhook_notification_block(url).notify("the body", subject="the subject")
    assert [m["text"] for m in slack.messages("monitoring-hris-files")] == ["*the subject*\nthe body"]
    wrong = httpx.post(url.rsplit("/", 1)[0] + "/wrong", json={"text": "x"}, trust_env=False)
    assert (wrong.status_code, wrong.text) == (404, "no_service")
    empty = httpx.post(url, json={"text": ""}, trust_env=False)
    assert (empty.status_code, empty.text) == (400, "no_text")
    assert len(slack.messages("monitoring-hris-files")) == 1


def test_the_watch_window_is_a_setting_of_at_least_ten_seconds(monkeypatch):
    from cli.monitoring import watch_window_seconds

    monkeypatch.delenv("HRIS_WATCH_WINDOW_SECONDS", raising=False)
    assert watch_window_seconds() == 2700  # three missed 15-minute ticks
    monkeypatch.setenv("HRIS_WATCH_WINDOW_SECONDS", "5")
    with pytest.raises(SystemExit) as refused:
        watch_window_seconds()
    assert (
        refused.value.code == "HRIS_WATCH_WINDOW_SECONDS: expected a whole number of seconds >= 10, got '5'"
    )
