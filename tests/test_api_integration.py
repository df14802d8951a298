"""api-integration as a deployment run against every stand-in, each gate answered through the API."""

from __future__ import annotations

import re

import httpx
import pytest
from prefect.deployments import run_deployment

from tasks.customer import key_in_alphabet
from tasks.mapping_cadence import api_customer
from tasks.setup_links import SETUP_LINK_SHOWN
from tests.conftest import make_customer, wait_until
from tests.gates import (
    answer,
    artifacts_and_logs,
    assert_words_only,
    form_description,
    read_run,
    waiting_gate,
)

KEY = "1ApiIntegrationMappingSheet000000000000"
LINK = f"https://docs.google.com/spreadsheets/d/{KEY}/edit"
HEADER = ["Category", "HRIS Field", "HRIS Values", "Notes", "10KC Segment", "10KC Value", "Visibility"]
GOOD = [
    HEADER,
    ["Org", "Department", "Engineering", "", "", "", "Public"],
    ["", "", "Sales", "", "", "", ""],
    ["Place", "Location", "LDN", "", "Office", "London", "Private"],
    ["", "", "PAR", "", "", "Paris", ""],
]
MISSING_VISIBILITY = [row[:6] + [""] for row in GOOD]
CSM = {"approver": "Casey Success"}


def start(customer):
    return run_deployment(
        "api-integration/api-integration",
        parameters={"customer": customer.model_dump(mode="json")},
        timeout=0,
    ).id


def task_runs(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def finished(run_id):
    return wait_until(
        lambda: (s := read_run(run_id).state).is_final() and s, timeout=120, what="the run to end"
    )


def support_requests(slack) -> list[dict]:
    """Support requests in #product-support (engineering's "waiting for you" notices are there too)."""
    return [m for m in slack.messages("product-support") if "please turn it on" in m["text"]]


def body(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")


@pytest.mark.timeout(900)  # ten gates, each a new flow-run process: 2 min at load 6; waits are on events
def test_api_integration_end_to_end_and_a_rerun_repeats_nothing(
    served,
    smtp_block,
    smtp_server,
    slack_block,
    slack,
    workos_block,
    workos,
    sheets_block,
    sheets,
    hub_block,
    hub,
):
    customer = make_customer(platform="Okta", email_domains=["acme-e2e.example", "acme-e2e.co.uk"])
    sheets.add_spreadsheet(KEY, {"Data Mapping": MISSING_VISIBILITY}, [sheets_block.client_email])
    run = start(customer)

    # 1. WorkOS organization: nothing happens before the CSM approves
    assert waiting_gate(run, timeout=120) == "workos-organization"
    assert read_run(run).state.name == "Suspended"
    assert "acme-e2e.example, acme-e2e.co.uk" in form_description(run) and workos.organizations == {}
    answer(run, "workos-organization", decision="approve", **CSM)

    # 2. implementation email with the long-lived setup link
    assert waiting_gate(run, timeout=120) == "api-implementation-email"
    [org] = workos.organizations.values()
    assert org["name"] == "Acme Corp" and [d["domain"] for d in org["domains"]] == customer.email_domains
    assert all(d["state"] == "verified" for d in org["domains"])
    answer(run, "api-implementation-email", decision="approve", **CSM)

    # 3. the table comes back with an error: the CSM is asked again with the report to forward
    assert waiting_gate(run, timeout=120) == "mapping-table-1"
    [implementation] = smtp_server.handler.messages()
    text = body(implementation)
    assert implementation["To"] == customer.contact_email
    assert implementation["Cc"] == "hris-team@10kc.example, casey@10kc.example"
    assert text.startswith("Hello Dana,\n\nHere's our Okta integration setup guide")
    assert "Column B: Add profile fields" in text and "Column G: Indicate if each field is public" in text
    assert "How often do you expect the fields of Department, Location and Management Level" in text
    setup_link = re.search(rf"({re.escape(workos_block.setup_links_url)}/setup/[\w.-]+)", text).group(1)
    redirect = httpx.get(setup_link, follow_redirects=False, trust_env=False, timeout=60)
    assert redirect.status_code == 302 and redirect.headers["location"].startswith(
        f"{workos.url}/portal/launch"
    )
    answer(run, "mapping-table-1", sheet_link=LINK, answered_by="Casey")

    assert waiting_gate(run, timeout=120) == "mapping-table-2"
    assert "the field 'Department' needs Public or Private in column G" in form_description(run)
    sheets.add_spreadsheet(KEY, {"Data Mapping": GOOD}, [sheets_block.client_email])
    answer(run, "mapping-table-2", sheet_link=LINK, answered_by="Casey")

    # segments: the plan is approved, then applied to the hub
    assert waiting_gate(run, timeout=120) == "segments-plan"
    answer(run, "segments-plan", decision="approve", **CSM)

    # 4 + 5. the support request, then engineering turns it on
    assert waiting_gate(run, timeout=120) == "integration-on"
    segments = {(s["name"], s["visibility"]): s["options"] for s in hub.hub(customer.hub_url).segments}
    assert segments == {
        ("Department", "public"): ["Engineering", "Sales"],
        ("Office", "private"): ["London", "Paris"],
    }
    [request] = support_requests(slack)
    assert f"<{customer.tenant_url}>" in request["text"]
    assert f"*WorkOS organization page:* <{workos_block.organization_page(org['id'])}>" in request["text"]
    assert f"*Completed data mapping table:* <{LINK}>" in request["text"]
    assert (
        "Bulk invite CSV template generation, profile updates, profile deletions, and profile deactivations"
        in request["text"]
    )
    answer(run, "integration-on", confirmed_by="Eng On-call", notes="on in production")

    # 6. the final summary email
    assert waiting_gate(run, timeout=120) == "summary-cadence"
    answer(run, "summary-cadence", cadence="quarterly", answered_by="Casey")
    assert waiting_gate(run, timeout=120) == "api-final-summary"
    answer(run, "api-final-summary", decision="approve", **CSM)
    state = finished(run)
    assert state.is_completed(), state.message

    implementation, final = smtp_server.handler.messages()
    assert final["To"] == customer.contact_email and "is set up" in final["Subject"]
    assert "on a quarterly basis" in body(final) and f"data mapping table ({LINK})" in body(final)
    kept = api_customer(customer.key)  # issue 23: mapping-review asks on the agreed cadence
    assert kept and (kept.mapping_cadence, kept.mapping_link) == ("quarterly", LINK)

    # what the CSM reads: the run's name, the progress table (the apply's result, although the run
    # re-executed from the top at each later gate), and words only in artifacts, logs and Slack
    assert read_run(run).name == "Acme Corp · api-integration"
    artifacts, logs = artifacts_and_logs(run)
    progress = [
        a["data"]
        for a in artifacts
        if a["key"] == f"progress-api-integration-{key_in_alphabet(customer.key, '-')}"
    ][0]
    assert "2 field(s); segments: 2 segment(s) created, 4 option(s) added" in progress
    assert_words_only(
        [a["data"] for a in artifacts] + logs + [m["text"] for m in slack.messages("product-support")]
    )
    assert {
        "send-email · Acme Corp · api-final-summary",
        "apply-segments · Acme Corp · segments-applied",
    } <= {t.name for t in task_runs(run)}

    # a manual re-run: no second organization, email, segment or support request
    rerun = start(customer)
    assert waiting_gate(rerun, timeout=120) == "mapping-table-1"
    answer(rerun, "mapping-table-1", sheet_link=LINK, answered_by="Casey")
    assert waiting_gate(rerun, timeout=120) == "integration-on"
    answer(rerun, "integration-on", confirmed_by="Eng")
    assert waiting_gate(rerun, timeout=120) == "summary-cadence"
    answer(rerun, "summary-cadence", cadence="quarterly", answered_by="Casey")
    assert finished(rerun).is_completed()
    assert len(workos.organizations) == 1
    assert len(smtp_server.handler.messages()) == 2
    assert len(support_requests(slack)) == 1
    assert len(hub.calls("/options$")) == 2


def test_rejecting_the_organization_stops_before_anything_is_created(
    served, smtp_block, smtp_server, slack_block, slack, workos_block, workos, sheets_block, hub_block
):
    run = start(make_customer(email_domains=["acme-reject.example"]))
    answer(run, "workos-organization", decision="reject", reason="wrong domains", **CSM)
    state = finished(run)
    assert state.is_cancelled() and "rejected by Casey Success: wrong domains" in state.message
    assert workos.organizations == {} and smtp_server.handler.messages() == []
    assert support_requests(slack) == []


def test_rejecting_the_email_stops_after_the_organization(
    served, smtp_block, smtp_server, slack_block, slack, workos_block, workos, sheets_block, hub_block
):
    run = start(make_customer(email_domains=["acme-reject2.example"]))
    answer(run, "workos-organization", decision="approve", **CSM)
    answer(run, "api-implementation-email", decision="reject", reason="customer on holiday", **CSM)
    state = finished(run)
    assert state.is_cancelled() and "customer on holiday" in state.message
    assert len(workos.organizations) == 1 and smtp_server.handler.messages() == []
    assert support_requests(slack) == []


def test_without_a_setup_links_endpoint_the_csm_pastes_a_dashboard_link(
    prefect_api, smtp_block, smtp_server, slack_block, slack, workos, workos_credentials, sheets_block
):
    import uuid

    from blocks import WorkOSCredentials
    from flows.api_integration import api_integration
    from tests.conftest import delete_block
    from tests.gates import FlowInThread

    WorkOSCredentials(api_key="sk_test_123", base_url=workos.url).save("default", overwrite=True)
    try:
        customer = make_customer(email_domains=["acme-paste.example"])
        run = FlowInThread(
            api_integration,
            f"api-{uuid.uuid4().hex[:8]}",
            customer=customer,
        )
        assert "paste a link created in the WorkOS dashboard" in form_description(run.flow_run_id)
        answer(run.flow_run_id, "workos-organization", decision="approve", **CSM)
        assert waiting_gate(run.flow_run_id) == "workos-setup-link"
        answer(
            run.flow_run_id,
            "workos-setup-link",
            setup_link="https://setup.workos.com/dashboard-made-link",
            answered_by="Casey",
        )
        assert waiting_gate(run.flow_run_id) == "api-implementation-email"
        shown = form_description(run.flow_run_id)  # the email carries the link; the form shows where
        assert SETUP_LINK_SHOWN in shown and "dashboard-made-link" not in shown
        answer(run.flow_run_id, "api-implementation-email", decision="approve", **CSM)
        assert waiting_gate(run.flow_run_id) == "mapping-table-1"
        [email] = smtp_server.handler.messages()
        link = "https://setup.workos.com/dashboard-made-link"
        assert f"{link} ({link})" in body(email) and len(workos.organizations) == 1
        from prefect.client.orchestration import get_client
        from prefect.states import Cancelled

        with get_client(sync_client=True) as client:  # done here
            client.set_flow_run_state(run.flow_run_id, Cancelled(message="test over"), force=True)
    finally:
        delete_block(WorkOSCredentials, "default")
