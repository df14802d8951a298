"""A worker killed (SIGKILL of the flow-run process) inside a side effect, after the stand-in acted
and before the answer arrived: the next run of the step (a Retry, a new process) finds what the
first did, and the stand-in counts one of each."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from tasks.workos import external_id_for
from tests.conftest import wait_until
from tests.once_effects import FILES, HUB_URL, customer_for
from tests.test_once_locks import finish

ROOT = Path(__file__).resolve().parents[2]


def start(effect: str, key: str, url: str, work: Path, *answer: str) -> subprocess.Popen:
    """The once-step in its own process, on the session's Prefect server."""
    from prefect.settings import PREFECT_API_URL

    return subprocess.Popen(
        [sys.executable, "-m", "tests.once_effects", effect, key, url, str(work), *answer],
        cwd=ROOT,
        env=dict(os.environ, PREFECT_API_URL=PREFECT_API_URL.value()),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_once_done(effect: str, key: str, url: str, work: Path, done, what: str, worker=None) -> None:
    """Run the step and SIGKILL its process as soon as `done()` holds (the stand-in has acted and
    holds its answer back)."""
    worker = worker or start(effect, key, url, work)
    try:
        wait_until(lambda: done() or worker.poll() is not None, timeout=180, what=what)
        assert worker.poll() is None, f"the step ended before it was killed: {finish(worker)[1]}"
    finally:
        worker.kill()  # SIGKILL: no cleanup, no answer ever seen
        worker.wait(10)


def run_again(effect: str, key: str, url: str, work: Path, *answer: str) -> None:
    code, output = finish(start(effect, key, url, work, *answer))
    assert code == 0, output


def new_key(step: str) -> str:
    return f"once--killed-{uuid.uuid4().hex[:8]}--{step}"


def top_level(slack, channel: str) -> list[dict]:
    return [m for m in slack.messages(channel) if m.get("thread_ts", m["ts"]) == m["ts"]]


def test_a_support_request_whose_worker_was_killed_mid_post_is_posted_once(prefect_api, slack, tmp_path):
    key = new_key("support-request")
    slack.inject("chat.postMessage", "timeout_after_acting", hang_seconds=300)
    kill_once_done(
        "support-request",
        key,
        slack.url,
        tmp_path,
        lambda: len(slack.messages("product-support")) == 1,
        "the support request to land",
    )
    run_again("support-request", key, slack.url, tmp_path)

    [request] = top_level(slack, "product-support")
    assert request["text"] == "Support request for Acme"
    [share] = [m for m in slack.messages("product-support") if m.get("files")]
    assert share["thread_ts"] == request["ts"]  # the retry put the sample under the first post
    assert len(slack.calls("chat.postMessage")) == 1


def test_files_whose_worker_was_killed_mid_share_are_shared_once(prefect_api, slack, tmp_path):
    key = new_key("shared")
    slack.inject("files.completeUploadExternal", "timeout_after_acting", hang_seconds=300)
    kill_once_done(
        "share-files",
        key,
        slack.url,
        tmp_path,
        lambda: any(m.get("files") for m in slack.messages("am-acme")),
        "the first file to be shared",
    )
    run_again("share-files", key, slack.url, tmp_path)

    [summary] = top_level(slack, "am-acme")
    assert summary["text"] == "3 files for Acme"
    shared = [(m["thread_ts"], f["name"]) for m in slack.messages("am-acme") for f in m.get("files") or []]
    assert sorted(shared) == sorted((summary["ts"], name) for name in FILES)
    assert len(slack.calls("files.completeUploadExternal")) == len(FILES)


def test_hub_uploads_whose_worker_was_killed_mid_upload_are_acted_on_once(prefect_api, hub, tmp_path):
    key = new_key("apply")
    hub.inject("/invites/bulk$", "timeout_after_acting", hang_seconds=300)
    kill_once_done(
        "apply-files",
        key,
        hub.url,
        tmp_path,
        lambda: len(hub.hub(HUB_URL).uploads) == 1,
        "the invites to be uploaded",
    )
    run_again("apply-files", key, hub.url, tmp_path)

    assert [action for action, _ in hub.hub(HUB_URL).uploads] == ["invite", "update", "remove"]
    assert len(hub.calls("/invites/bulk$")) == 2  # the killed attempt, and the retry answered from memory


def test_a_workos_organization_whose_worker_was_killed_mid_create_exists_once(prefect_api, workos, tmp_path):
    key = new_key("workos-organization")  # not a once-step: the lookup by external id is the guard
    workos.inject("^/organizations$", "timeout_after_acting", method="POST", hang_seconds=300)
    kill_once_done(
        "workos-organization", key, workos.url, tmp_path, lambda: workos.organizations, "the organization"
    )
    run_again("workos-organization", key, workos.url, tmp_path)

    [organization] = workos.organizations.values()
    assert organization["external_id"] == external_id_for(customer_for(key))
    assert len([r for r in workos.calls("^/organizations$") if r.method == "POST"]) == 1


def test_an_email_whose_worker_was_killed_mid_send_is_not_sent_again_unasked(
    prefect_api, smtp_server, tmp_path
):
    """SMTP cannot be asked what it kept: the next run asks the CSM (in Cc) instead of sending again."""
    sink = smtp_server.handler
    url = f"smtp://127.0.0.1:{smtp_server.port}"
    key = new_key("email")
    sink.inject("kept_then_hang", hang_seconds=300)
    kill_once_done("email", key, url, tmp_path, lambda: len(sink.messages()) == 1, "the email to be kept")

    code, output = finish(start("email", key, url, tmp_path))  # a Retry of the run
    assert code == 1
    assert "“Your HRIS integration” may already have gone out" in output
    assert len(sink.messages()) == 1 and sink.data_commands == 1

    run_again("email", key, url, tmp_path, "It arrived")  # the CSM found it in their Cc copy
    run_again("email", key, url, tmp_path)  # done for good
    assert len(sink.messages()) == 1 and sink.data_commands == 1


def execute(flow_run_id) -> subprocess.Popen:
    """Run an existing deployment run as a worker does: a new process, given the run's id."""
    from prefect.settings import PREFECT_API_URL

    return subprocess.Popen(
        [sys.executable, "-m", "prefect.flow_engine", "tests/once_effects.py:once_effect"],
        cwd=ROOT,
        env=dict(os.environ, PREFECT_API_URL=PREFECT_API_URL.value(), PREFECT__FLOW_RUN_ID=str(flow_run_id)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_retry_on_a_run_crashed_mid_share_completes_it_and_shares_once(prefect_api, slack, tmp_path):
    """Issue 19, README on call: "A run is Crashed … press Retry on the run's page: every side effect
    is once-only, so nothing is sent twice." The Retry re-runs the same flow run in a new process."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Crashed, State

    from tests.once_effects import once_effect

    key = new_key("retried")
    deployment = once_effect.to_deployment(name="retry-after-crash").apply()  # Retry needs a deployment
    parameters = {"effect": "share-files", "once_key": key, "url": slack.url, "work": str(tmp_path)}
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployment, parameters=parameters)
    slack.inject("files.completeUploadExternal", "timeout_after_acting", hang_seconds=300)
    kill_once_done(
        "share-files",
        key,
        slack.url,
        tmp_path,
        lambda: any(m.get("files") for m in slack.messages("am-acme")),
        "the first file to be shared",
        worker=execute(run.id),
    )
    with get_client(sync_client=True) as client:
        # what the worker reports when the run's process dies, then what the UI's Retry button sends
        client.set_flow_run_state(run.id, Crashed(message="Process exited with status code -9"), force=True)
        retry = State(type=StateType.SCHEDULED, name="AwaitingRetry", message="Retry from the UI")
        assert client.set_flow_run_state(run.id, retry).status == SetStateStatus.ACCEPT
    code, output = finish(execute(run.id))
    assert code == 0, output
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state.is_completed(), state.message

    [summary] = top_level(slack, "am-acme")
    assert summary["text"] == "3 files for Acme"
    shared = [(m["thread_ts"], f["name"]) for m in slack.messages("am-acme") for f in m.get("files") or []]
    assert sorted(shared) == sorted((summary["ts"], name) for name in FILES)
    assert len(slack.calls("files.completeUploadExternal")) == len(FILES)
