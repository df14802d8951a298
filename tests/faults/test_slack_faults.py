"""Slack faults against the poster the flows use (tasks/slack.py) and the approval gate's notice
(tasks/approvals.py): a post survives each fault and appears once; a Slack outage never fails a
gate, which still waits and can be answered."""

from __future__ import annotations

import uuid

import pytest
from prefect import flow

from tasks.approvals import WaitSettings, request_approval
from tasks.gate_notices import Notify
from tasks.slack import Slack, SlackError
from tests.conftest import wait_until
from tests.gates import FlowInThread, answer, artifacts_and_logs

FAULTS = ["rate_limit", "server_error", "hang", "drop", "lost_answer"]


@pytest.fixture
def poster(slack_workspace) -> Slack:
    poster = Slack(slack_workspace)
    poster.client.timeout = 1  # give up on a hung call quickly
    return poster


@pytest.mark.parametrize("fault", FAULTS)
def test_a_post_appears_once_whatever_happens_to_it(slack, poster, fault):
    slack.inject("chat.postMessage", fault, hang_seconds=3)
    posted = poster.post("#product-support", "New upload from Acme")

    assert [kind for kind, _, _ in slack.faults_served] == [fault]
    [message] = slack.messages("product-support")
    assert message["text"] == "New upload from Acme" and posted.ts == message["ts"]
    # a lost answer is found in the channel by its post id instead of being posted again
    assert len(slack.calls("chat.postMessage")) == (1 if fault == "lost_answer" else 2)


def test_a_thread_reply_whose_answer_was_lost_is_found_in_the_thread(slack, poster):
    parent = poster.post("#product-support", "Support request")
    slack.inject("chat.postMessage", "lost_answer")
    reply = poster.post("#product-support", "Sample attached", thread_ts=parent.ts)

    assert [m["text"] for m in slack.messages("product-support")] == ["Support request", "Sample attached"]
    assert reply.ts == slack.messages("product-support")[1]["ts"]
    assert len(slack.calls("chat.postMessage")) == 2 and len(slack.calls("conversations.replies")) == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_a_file_shared_in_a_thread_appears_once_whatever_happens_to_the_share(slack, poster, tmp_path, fault):
    parent = poster.post("#product-support", "Support request")
    sample = tmp_path / "sample.csv"
    sample.write_text("Email,First Name\nann@acme.example,Ann\n")
    slack.inject("files.completeUploadExternal", fault, hang_seconds=3)
    file_id = poster.share_file("#product-support", sample, comment="Sample CSV", thread_ts=parent.ts)

    assert [kind for kind, _, _ in slack.faults_served] == [fault]
    shares = [m for m in slack.messages("product-support") if m.get("files")]
    assert [(m["thread_ts"], [f["id"] for f in m["files"]]) for m in shares] == [(parent.ts, [file_id])]
    assert slack.files[file_id]["content"] == sample.read_bytes()


@pytest.mark.slow
def test_slack_that_never_answers_ends_the_post_in_one_clear_line(slack, poster):
    slack.inject("chat.postMessage", "drop", times=10)
    with pytest.raises(SlackError) as failure:
        poster.post("#product-support", "New upload from Acme")
    assert str(failure.value) == (
        "Slack posting to #product-support: no answer after 4 attempts (RemoteDisconnected); not posted"
    )
    assert slack.messages("product-support") == []


@flow(name="faults-gate")
def gate(wait: WaitSettings) -> str:
    notice = Notify(email="casey@10kc.example", channel="#am-acme")
    return request_approval(
        key="faults-gate", title="Fault test", what="Approve?", wait=wait, notify=notice
    ).approver


@pytest.mark.parametrize("outage", ["stopped", "dropping"])
def test_a_slack_outage_leaves_the_gate_waiting_and_answerable(slack, slack_block, outage):
    if outage == "stopped":
        slack.stop()  # connection refused: slack-sdk raises URLError, not a Slack API error
    else:
        slack.inject(".", "drop", times=1000)
    run = FlowInThread(gate, f"faults-gate-{uuid.uuid4().hex[:8]}", wait=WaitSettings(poll_seconds=0.2))
    answer(run.flow_run_id, "faults-gate", decision="approve", approver="Casey Success")

    state = run.result()
    assert state.is_completed(), state.message
    assert state.result() == "Casey Success"
    # what the CSM sees on the run: Slack was tried and the failure said so, not hidden
    wait_until(
        lambda: any("Could not notify in Slack" in line for line in artifacts_and_logs(run.flow_run_id)[1]),
        timeout=30,
        what="the run's log line about Slack",
    )
    if outage == "dropping":  # a running stand-in can show that the notice was tried and not delivered
        assert slack.calls("users.lookupByEmail"), "the gate never tried to DM"
        assert slack.messages("dm-" + slack.users["casey@10kc.example"].lower()) == []
