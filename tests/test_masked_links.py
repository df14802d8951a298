"""Links someone could use are kept out of what Prefect stores in plain text (artifacts, forms, answers)
and out of Slack, except the one form a person copies a link from; the email still carries the real one."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Cancelled

from tasks.approvals import WaitSettings
from tasks.export_links import EXPORT_LINK_SHOWN
from tasks.setup_links import SETUP_LINK_SHOWN
from tests.conftest import make_customer
from tests.gates import FlowInThread, answer, artifacts_and_logs, form_description, waiting_gate

CSM = {"approver": "Casey Success"}
FAST = WaitSettings(poll_seconds=0.2, remind_after_hours=1)


def stored_texts(flow_run_id) -> dict[str, str]:
    """Every text Prefect keeps for a run that a UI user can read: artifacts, run inputs (form
    schemas, descriptions, answers), logs and parameters; by where they are kept."""
    artifacts, logs = artifacts_and_logs(flow_run_id)
    with get_client(sync_client=True) as client:
        inputs = client.filter_flow_run_input(flow_run_id, "", 1000, set())
        run = client.read_flow_run(flow_run_id)
    texts = {f"artifact {a['key']}": f"{a.get('data')} {a.get('description')}" for a in artifacts}
    texts |= {f"input {i.key}": i.value for i in inputs}
    texts |= {"logs": "\n".join(logs), "parameters": repr(run.parameters)}
    return texts


def all_messages(slack) -> list[dict]:
    """Every message the Slack stand-in holds, in every channel and DM."""
    return [m for channel in list(slack.channels.values()) for m in channel.messages]


def stop(flow_run_id) -> None:
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Cancelled(message="test over"), force=True)


def email_text(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")


def test_the_setup_link_is_only_in_the_email_never_in_what_prefect_or_slack_keeps(
    prefect_api, smtp_block, smtp_server, slack_block, slack, workos_block, workos, sheets_block
):
    from flows.api_integration import api_integration

    customer = make_customer(email_domains=["acme-masked.example"])
    run = FlowInThread(api_integration, f"api-{uuid.uuid4().hex[:8]}", customer=customer)
    answer(run.flow_run_id, "workos-organization", decision="approve", **CSM)
    assert waiting_gate(run.flow_run_id) == "api-implementation-email"
    assert f"[{SETUP_LINK_SHOWN}]({SETUP_LINK_SHOWN})" in form_description(run.flow_run_id)
    answer(run.flow_run_id, "api-implementation-email", decision="approve", **CSM)  # the body as shown
    assert waiting_gate(run.flow_run_id) == "mapping-table-1"

    [email] = smtp_server.handler.messages()
    link = re.search(rf"{re.escape(workos_block.setup_links_url)}/setup/([\w.-]+)", email_text(email))
    assert link is not None and SETUP_LINK_SHOWN not in email_text(email)
    token = link.group(1)
    assert f"{link.group(0)} ({link.group(0)})" in email_text(email)  # label and address, as drafted
    texts = stored_texts(run.flow_run_id)
    assert any(SETUP_LINK_SHOWN in text for text in texts.values())  # the form and artifact were read
    assert [where for where, text in texts.items() if token in str(text)] == []
    assert [m["text"] for m in all_messages(slack) if token in m["text"]] == []
    # the once-records (make-setup-link, send-email) keep how to make the link again, not the link
    stored = [p for p in Path(os.environ["PREFECT_LOCAL_STORAGE_PATH"]).rglob("*") if p.is_file()]
    assert any("setup-link-issued" in p.read_text(errors="replace") for p in stored)
    assert [p.name for p in stored if token in p.read_text(errors="replace")] == []
    stop(run.flow_run_id)


def test_an_approved_body_without_the_stand_in_is_asked_again_and_nothing_is_sent(
    prefect_api, smtp_block, smtp_server, slack_block, slack, workos_block, workos, sheets_block
):
    from flows.api_integration import api_integration

    run = FlowInThread(
        api_integration,
        f"api-{uuid.uuid4().hex[:8]}",
        customer=make_customer(email_domains=["acme-masked2.example"]),
    )
    answer(run.flow_run_id, "workos-organization", decision="approve", **CSM)
    assert waiting_gate(run.flow_run_id) == "api-implementation-email"
    answer(
        run.flow_run_id, "api-implementation-email", decision="approve", body="Hello, no link here.", **CSM
    )
    assert waiting_gate(run.flow_run_id) == "api-implementation-email-again-1"
    assert f"keep {SETUP_LINK_SHOWN} in the text" in form_description(run.flow_run_id)
    assert smtp_server.handler.messages() == []
    stop(run.flow_run_id)


@flow
def asks_for_member_export(customer: dict, mapping: str) -> str:
    """process-upload without a hub API, up to its member-export gate."""
    from tasks.customer import Customer
    from tasks.registry import Registration
    from tasks.uploads import current_members

    reg = Registration(customer=Customer(**customer), mode="onboarding", mapping_link=mapping)
    return str(current_members(reg, "20261126T040000Z-staff.csv", FAST))


def test_the_member_export_link_is_only_in_the_form_the_csm_copies_it_from(
    prefect_api, slack_block, slack, workos_block, tmp_path
):
    customer = make_customer()
    run = FlowInThread(
        asks_for_member_export,
        f"export-{uuid.uuid4().hex[:8]}",
        customer=customer.model_dump(mode="json"),
        mapping=str(tmp_path / "map.csv"),
    )
    assert waiting_gate(run.flow_run_id) == "member-export"
    link = re.search(r"https?://\S+/member-export/([\w.-]+)", form_description(run.flow_run_id))
    assert link is not None
    token = link.group(1)
    texts = stored_texts(run.flow_run_id)
    assert EXPORT_LINK_SHOWN in texts["artifact waiting-member-export"]
    # the form's description: nowhere else
    assert [where for where, text in texts.items() if token in str(text)] == [
        "input paused-member-export-description"
    ]
    notices = [m["text"] for m in all_messages(slack) if "Waiting for you" in m["text"]]
    assert notices and not [text for text in notices if token in text]
    stop(run.flow_run_id)
