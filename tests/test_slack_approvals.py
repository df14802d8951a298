"""Approve / reject from Slack: the Slack stand-in sends signed interactive payloads to the web app,
which verifies them and resumes the run through Prefect as the UI form does."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run
from prefect.states import Cancelled

from flows.api_integration import IntegrationOn
from flows.setup_guides import setup_guides
from tasks.approvals import WaitSettings, ask
from tasks.contracts import INTEGRATION_ON
from tasks.customer import Customer
from tasks.gate_buttons import APPROVE, REJECT
from tasks.gate_notices import Notify
from tests.conftest import ServerThread, delete_block, make_customer, wait_until
from tests.gates import FlowInThread, answer, waiting_gate

FAST = WaitSettings(poll_seconds=0.2, remind_after_hours=1)
CSM, MANAGER, OUTSIDER = "casey@10kc.example", "imani@10kc.example", "mallory@10kc.example"
ENGINEER = "eng-oncall@10kc.example"  # in the block's `approvers`: not the customer's CSM or manager
GATE = "setup-guides-email"


@pytest.fixture
def app(prefect_api, slack, smtp_block):
    """The Slack Workspace block with a signing secret, and the web app as `hris-runbook setup-links`
    mounts it; yields the interactivity Request URL."""
    from blocks import SlackWorkspace
    from webapp import slack_actions
    from webapp.app import create_public_app

    for email in (MANAGER, OUTSIDER, ENGINEER):
        slack.add_user(email)
    block = SlackWorkspace(
        bot_token="xoxb-test",
        base_url=f"{slack.url}/api/",
        signing_secret=slack.signing_secret,
        approvers=[ENGINEER.upper()],  # compared without case, as Slack's profile email may differ
        max_retries=1,
    )
    block.save("default", overwrite=True)
    # The app webapp/app.py's app_from_blocks serves, with the route list it mounts for Slack.
    server = ServerThread(create_public_app(slack_actions.routes_from_block(block)))
    try:
        yield f"{server.url}/slack/actions"
    finally:
        server.stop()
        delete_block(SlackWorkspace, "default")


def notice(slack, email: str = CSM) -> str:
    """The CSM's DM channel, once the gate's notice with buttons is in it."""
    name = f"dm-{slack.users[email].lower()}"
    wait_until(lambda: any(m.get("blocks") for m in slack.messages(name)), what="the notice with buttons")
    return name


def decisions(flow_run_id) -> list[str]:
    with get_client(sync_client=True) as client:
        found = client.request(
            "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [str(flow_run_id)]}}}
        ).json()
    return [a["data"] for a in found if (a.get("key") or "").startswith("decision-")]


def ephemeral_for(slack, email: str, count: int = 1) -> list[str]:
    user = slack.users[email]
    return wait_until(
        lambda: (texts := [e["text"] for e in slack.ephemerals if e["user"] == user])[count - 1 :] and texts,
        what=f"{count} ephemeral reply(ies) to {email}",
    )


def start(customer) -> FlowInThread:
    return FlowInThread(setup_guides, f"slack-gate-{uuid.uuid4().hex[:8]}", customer=customer)


def test_approve_in_slack_resumes_the_suspended_run_with_the_verified_approver(
    served, app, slack, smtp_server
):
    customer = make_customer()
    run = run_deployment(
        "setup-guides/setup-guides",
        parameters={"customer": customer.model_dump(mode="json")},
        timeout=0,
    )
    assert waiting_gate(run.id, timeout=120) == GATE
    channel = notice(slack)
    buttons = [
        e["action_id"]
        for b in slack.messages(channel)[-1]["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert buttons == [APPROVE, REJECT]

    status, _ = slack.click(app, channel, CSM, APPROVE)
    assert status == 200
    wait_until(lambda: waiting_gate(run.id, timeout=120) == "customer-choice", timeout=120, what="next gate")
    assert len(smtp_server.handler.messages()) == 1
    (decision,) = decisions(run.id)
    assert f"| {CSM} (verified in Slack) |" in decision and "| approve |" in decision
    (update,) = wait_until(lambda: slack.updates, what="the notice's update")  # sent after the resume
    assert f"Approved by {CSM}" in update["text"]
    assert not any(b["type"] == "actions" for b in update["blocks"])  # buttons removed
    # Slack then UI: a UI form still showing the email gate answers too late. Prefect checks it
    # against the form of the gate the run waits at now and refuses it; the run still waits there,
    # and neither the email nor the decision happened twice.
    with pytest.raises(RuntimeError, match=r"Cannot resume .*\('approver', 'decision' were unexpected\)"):
        resume_flow_run(run.id, run_input={"decision": "approve", "approver": "Casey Success"})
    assert waiting_gate(run.id) == "customer-choice"
    assert len(smtp_server.handler.messages()) == 1 and len(decisions(run.id)) == 1
    # The next gate's form cannot be filled by a button: its notice keeps only the link.
    assert not any(m.get("blocks") for m in slack.messages(channel)[1:])
    with get_client(sync_client=True) as client:  # done here; no need to start its process again
        client.set_flow_run_state(run.id, Cancelled(message="test over"), force=True)


def test_reject_through_the_modal_cancels_the_run_with_the_reason(app, slack, smtp_server):
    run = start(make_customer())
    waiting_gate(run.flow_run_id)
    channel = notice(slack)
    assert slack.click(app, channel, MANAGER, REJECT)[0] == 200
    (view,) = wait_until(slack.opened_views, what="the reason modal")
    status, body = slack.submit_view(app, view["id"], MANAGER, {"reason": "  "})
    assert json.loads(body)["errors"] == {"reason": "Say why, so the run records it."}
    assert waiting_gate(run.flow_run_id) == GATE  # an empty reason changes nothing
    status, body = slack.submit_view(app, view["id"], MANAGER, {"reason": "no " * 200})
    assert json.loads(body)["errors"] == {"reason": "At most 500 characters (this is 599): say it shorter."}
    assert waiting_gate(run.flow_run_id) == GATE  # nor does one too long for the notice

    reason = "customer on holiday <!channel> & back in May"
    assert slack.submit_view(app, view["id"], MANAGER, {"reason": reason})[0] == 200
    state = run.result()
    assert state.is_cancelled()
    assert f"rejected by {MANAGER} (verified in Slack): {reason}" in state.message  # as typed, on the run
    assert smtp_server.handler.messages() == []
    (decision,) = decisions(run.flow_run_id)
    assert "| reject |" in decision and "customer on holiday" in decision
    (update,) = wait_until(lambda: slack.updates, what="the notice's update")  # the reason notifies nobody
    assert f"Rejected by {MANAGER}" in update["text"]
    assert "customer on holiday &lt;!channel&gt; &amp; back in May" in update["text"]
    assert "<!channel>" not in update["text"] and not slack.refused


def test_stale_replayed_unsigned_forged_unauthorised_and_unknown_clicks_change_nothing(
    app, slack, smtp_server
):
    run = start(make_customer())
    waiting_gate(run.flow_run_id)
    channel = notice(slack)

    assert slack.click(app, channel, CSM, APPROVE, timestamp=int(time.time()) - 301)[0] == 401
    assert slack.click(app, channel, CSM, APPROVE, signed=False)[0] == 401
    assert slack.click(app, channel, CSM, APPROVE, secret="not-the-secret")[0] == 401

    assert slack.click(app, channel, OUTSIDER, APPROVE)[0] == 200
    assert "not one of them" in ephemeral_for(slack, OUTSIDER)[0]
    status, body = slack.replay_last()
    assert (status, body) == (401, "refused: replayed request")

    message = slack.messages(channel)[-1]
    forged = json.loads(message["blocks"][-1]["elements"][0]["value"]) | {"run": str(uuid.uuid4())}
    payload = {
        "type": "block_actions",
        "user": {"id": slack.users[CSM]},
        "trigger_id": "1.2.x",
        "container": {
            "type": "message",
            "channel_id": slack.channel(channel).id,
            "message_ts": message["ts"],
        },
        "message": {"text": message["text"]},
        "actions": [{"action_id": APPROVE, "value": json.dumps(forged)}],
    }
    assert slack.send_interaction(app, payload)[0] == 200
    assert "does not exist" in ephemeral_for(slack, CSM)[0]

    assert waiting_gate(run.flow_run_id) == GATE
    assert decisions(run.flow_run_id) == [] and slack.updates == [] and smtp_server.handler.messages() == []
    assert len(ephemeral_for(slack, OUTSIDER)) == 1  # the replay got no second reply
    answer(run.flow_run_id, GATE, decision="reject", reason="test over", approver="Casey Success")
    assert run.result().is_cancelled()


def test_ui_then_slack_resumes_once_and_the_late_click_is_told_so(app, slack, smtp_server):
    run = start(make_customer())
    waiting_gate(run.flow_run_id)
    channel = notice(slack)
    answer(run.flow_run_id, GATE, decision="approve", approver="Casey Success")
    assert slack.click(app, channel, CSM, APPROVE)[0] == 200
    assert "already answered" in ephemeral_for(slack, CSM)[0]
    wait_until(lambda: waiting_gate(run.flow_run_id) == "customer-choice", what="the next gate")
    (decision,) = decisions(run.flow_run_id)
    assert "| Casey Success |" in decision
    assert slack.updates == [] and len(smtp_server.handler.messages()) == 1
    answer(run.flow_run_id, "customer-choice", option="not yet", answered_by="Casey Success")
    assert run.result().is_completed()


@flow(name="integration-on-gate")
def integration_on_gate(customer: Customer) -> str:
    """API step 5 as api-integration asks it: engineering's gate, announced in #product-support."""
    on = ask(
        IntegrationOn,
        key=INTEGRATION_ON,
        title=f"Engineering: is {customer.company_name}'s HRIS integration turned on?",
        description="Resume when the integration is on.",
        notify=Notify(channel="#product-support"),
    )
    return on.confirmed_by


def test_engineering_in_approvers_answers_it_is_turned_on_and_nobody_else_can(app, slack):
    """Issue 19: the "It is turned on" button, clicked by engineering on call, who is neither the
    customer's CSM nor its implementation manager: only the block's `approvers` list lets them."""
    run = FlowInThread(integration_on_gate, f"slack-on-{uuid.uuid4().hex[:8]}", customer=make_customer())
    assert waiting_gate(run.flow_run_id) == INTEGRATION_ON
    wait_until(lambda: any(m.get("blocks") for m in slack.messages("product-support")), what="the notice")
    [notice_message] = slack.messages("product-support")
    [buttons] = [b["elements"] for b in notice_message["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["text"]["text"]) for e in buttons] == [(APPROVE, "It is turned on")]

    assert slack.click(app, "product-support", OUTSIDER, APPROVE)[0] == 200
    assert "not one of them" in ephemeral_for(slack, OUTSIDER)[0]
    assert waiting_gate(run.flow_run_id) == INTEGRATION_ON and slack.updates == []

    assert slack.click(app, "product-support", ENGINEER, APPROVE)[0] == 200
    state = run.result()
    assert state.is_completed() and state.result() == f"{ENGINEER} (verified in Slack)"
    (update,) = wait_until(lambda: slack.updates, what="the notice's update")  # sent after the resume
    assert f"✅ Confirmed by {ENGINEER}" in update["text"]
    assert not any(b["type"] == "actions" for b in update["blocks"])


def notice_for(slack, flow_run_id: str, text: str) -> str:
    """A gate's notice with buttons for this run in the CSM's DM, posted as flows/approvals.py does."""
    from blocks import SlackWorkspace
    from tasks.gate_buttons import gate_blocks
    from tasks.slack import Slack

    Slack(SlackWorkspace.load("default")).direct_message(
        CSM, text, gate_blocks(text, flow_run_id, GATE, "EmailReview")
    )
    return notice(slack)


def test_reject_opens_the_reason_form_at_once_and_checks_when_it_is_submitted(app, slack):
    # a run that is not suspended yet (the notice goes out a moment before the run waits), and a
    # notice as long as Slack allows, in German: its JSON in the form's metadata is far longer
    customer = make_customer()
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(setup_guides, parameters={"customer": customer.model_dump(mode="json")})
    channel = notice_for(slack, str(run.id), "Überprüfung der E-Mail „Willkommen“ · " * 75)

    assert slack.click(app, channel, MANAGER, REJECT)[0] == 200
    (view,) = wait_until(slack.opened_views, what="the reason modal (the stand-in refuses it after 3 s)")
    assert len(view["view"]["private_metadata"]) <= 3_000 and slack.refused == []

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Cancelled(message="cancelled meanwhile"), force=True)
    assert slack.submit_view(app, view["id"], MANAGER, {"reason": "wrong platform"})[0] == 200
    assert ephemeral_for(slack, MANAGER) == ["This run is already cancelled: nothing was changed."]
    assert slack.updates == []


def test_a_call_slack_refuses_is_told_to_the_clicker_only(app, slack):
    channel = notice_for(slack, str(uuid.uuid4()), "Waiting for you: *Send “Hello” to Acme*")
    slack.trigger_seconds = 0  # the click's trigger expires before the app uses it

    assert slack.click(app, channel, MANAGER, REJECT)[0] == 200
    assert ephemeral_for(slack, MANAGER) == [
        "Slack refused views.open (expired_trigger_id): nothing was changed; click again."
    ]
    assert slack.opened_views() == [] and [e["user"] for e in slack.ephemerals] == [slack.users[MANAGER]]


def test_clicks_from_another_slack_workspace_are_refused_when_the_workspace_is_configured(
    prefect_api, slack, smtp_block
):
    from blocks import SlackWorkspace
    from webapp import slack_actions
    from webapp.app import create_public_app

    slack.add_user(MANAGER)
    block = SlackWorkspace(
        bot_token="xoxb-test",
        base_url=f"{slack.url}/api/",
        signing_secret=slack.signing_secret,
        team_id="T0SANDBOX",
    )
    block.save("default", overwrite=True)
    server = ServerThread(create_public_app(slack_actions.routes_from_block(block)))
    try:
        url = f"{server.url}/slack/actions"
        channel = notice_for(slack, str(uuid.uuid4()), "Waiting for you: *Send “Hello” to Acme*")
        status, body = slack.click(url, channel, MANAGER, REJECT, team="T0ELSEWHERE")
        assert (status, body) == (
            403,
            "refused: this click comes from another Slack workspace than the one configured",
        )
        assert slack.click(url, channel, MANAGER, REJECT)[0] == 200  # the configured workspace's click works
        (view,) = wait_until(slack.opened_views, what="the reason modal of the configured workspace's click")
        assert slack.views[view["id"]]["team"] == "T0SANDBOX"
    finally:
        server.stop()
        delete_block(SlackWorkspace, "default")
