"""setup-guides as a deployment run: it suspends at each gate (no process held) and resumes."""

from __future__ import annotations

from datetime import timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
from prefect.deployments import run_deployment

from tests.conftest import make_customer, wait_until
from tests.gates import answer, read_run, waiting_gate


def test_a_deployment_run_suspends_at_the_gate_and_sends_once_after_resume(served, smtp_block, smtp_server):
    customer = make_customer(platform="BambooHR")
    run = run_deployment(
        "setup-guides/setup-guides", parameters={"customer": customer.model_dump()}, timeout=0
    )

    assert waiting_gate(run.id) == "setup-guides-email"
    assert read_run(run.id).name == "Acme Corp · setup-guides"
    state = read_run(run.id).state
    assert state.name == "Suspended", "a deployment run must not hold a worker while it waits"
    assert smtp_server.handler.messages() == []

    answer(run.id, "setup-guides-email", decision="approve", approver="Casey Success")
    answer(run.id, "customer-choice", option="sftp", answered_by="Casey Success")

    final = wait_until(lambda: (s := read_run(run.id).state).is_final() and s, timeout=240, what="run end")
    assert final.is_completed(), final.message
    [message] = smtp_server.handler.messages()
    assert message["To"] == customer.contact_email
    # the run re-executed from the top after each resume; its timeline shows each step once
    with get_client(sync_client=True) as client:
        steps = [t.name for t in client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [run.id]}))]
    assert "send-email · Acme Corp · setup-guides-email" in steps
    assert sorted(steps) == sorted(set(steps)), f"a step shows more than once: {sorted(steps)}"
    assert "Connecting BambooHR to 10KC" in message["Subject"]

    # the customer chose SFTP: sftp-integration was started once, for this customer
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(
                    any_=[client.read_deployment_by_name("sftp-integration/sftp-integration").id]
                )
            )
        )
    started = [r for r in runs if r.parameters["customer"]["email_domains"] == customer.email_domains]
    assert len(started) == 1


def test_suspended_runs_get_reminders_from_the_sweeper_once_per_interval(
    served, smtp_block, smtp_server, slack_block, slack
):
    from flows.reminders import approval_reminders
    from tasks.approvals import wait_settings

    customer = make_customer()
    run = run_deployment(
        "setup-guides/setup-guides", parameters={"customer": customer.model_dump()}, timeout=0
    )
    assert waiting_gate(run.id) == "setup-guides-email"
    suspended_at = read_run(run.id).state.timestamp
    interval = timedelta(hours=wait_settings().remind_after_hours)

    def reminders_of_this_run() -> list[dict]:
        with get_client(sync_client=True) as client:
            artifacts = client.request(
                "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [str(run.id)]}}}
            ).json()
        return [a for a in artifacts if a["key"] == "reminder-setup-guides-email"]

    # The sweeper judges waits at the `now` it is given: no sleeping, no racing its interval; other
    # runs on the shared server may be reminded too, so only this run's reminders are counted.
    approval_reminders(now=suspended_at + interval * 0.9)
    assert reminders_of_this_run() == []  # not due yet
    approval_reminders(now=suspended_at + interval * 1.1)
    assert len(reminders_of_this_run()) == 1
    approval_reminders(now=suspended_at + interval * 1.9)
    assert len(reminders_of_this_run()) == 1  # not due again yet
    approval_reminders(now=suspended_at + interval * 2.1)
    reminders = reminders_of_this_run()
    assert len(reminders) == 2 and all("Send “Connecting Workday to 10KC" in r["data"] for r in reminders)

    dm = slack.messages("dm-" + slack.users["casey@10kc.example"].lower())
    assert len([m for m in dm if "Still waiting" in m["text"] and str(run.id) in m["text"]]) == 2
    assert read_run(run.id).state.is_paused()  # still waiting, not failed

    answer(run.id, "setup-guides-email", decision="reject", reason="reminder test", approver="Casey")
    final = wait_until(lambda: (s := read_run(run.id).state).is_final() and s, timeout=240, what="run end")
    assert final.is_cancelled()
    assert smtp_server.handler.messages() == []
