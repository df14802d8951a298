"""Hub segments from the data mapping table: plan, apply (idempotent), and the CSM's checklist."""

from __future__ import annotations

import uuid

import pytest
from prefect import flow

from blocks import TenKCHub
from sandbox.http import Response
from tasks.approvals import WaitSettings
from tasks.hub import HubError
from tasks.mapping import parse_rows
from tasks.retry import retry_delay
from tasks.segments import apply_plan, checklist, plan_segments
from tasks.steps import update_hub_segments
from tests.conftest import make_customer
from tests.gates import FlowInThread, answer, form_description, waiting_gate

HEADER = ["Category", "HRIS Field", "HRIS Values", "Notes", "10KC Segment", "10KC Value", "Visibility"]
TABLE = parse_rows(
    [
        HEADER,
        ["Org", "Department", "Engineering", "", "", "", "Public"],
        ["", "", "Eng", "", "", "Engineering", ""],
        ["", "", "Sales", "", "", "", ""],
        ["Place", "Work Location", "LDN", "", "Office", "London", "Private"],
        ["", "", "PAR", "", "", "Paris", ""],
    ],
    "test table",
)
HUB_URL = "https://acme.10kc.example/hub/main"


def test_plan_then_apply_creates_what_is_missing_and_a_second_apply_changes_nothing(hub):
    client = TenKCHub(api_token="hub-test", base_url_override=hub.url).get_client(HUB_URL)
    client.create_segment("department", "public")
    client.add_options(client.list_segments()[0]["id"], ["Sales", "Legal"])

    plan = plan_segments(TABLE, client.list_segments())
    assert [(c.name, c.visibility, c.exists, c.options_to_add) for c in plan.changes] == [
        ("Department", "public", True, ["Engineering"]),
        ("Office", "private", False, ["London", "Paris"]),
    ]
    assert apply_plan(client, plan) == {"segments_created": 1, "options_added": 3}
    state = {(s["name"], s["visibility"]): s["options"] for s in hub.hub(HUB_URL).segments}
    assert state == {
        ("department", "public"): ["Sales", "Legal", "Engineering"],
        ("Office", "private"): ["London", "Paris"],
    }

    again = plan_segments(TABLE, client.list_segments())
    assert again.is_empty
    assert apply_plan(client, again) == {"segments_created": 0, "options_added": 0}
    assert {
        (s["name"], s["visibility"]): s["options"] for s in hub.hub(HUB_URL).segments
    } == state  # nothing removed


def test_a_visibility_clash_is_flagged_not_changed(hub):
    client = TenKCHub(api_token="hub-test", base_url_override=hub.url).get_client(HUB_URL)
    client.create_segment("Office", "public")
    plan = plan_segments(TABLE, client.list_segments())
    assert plan.conflicts == ["'Office' is a public segment in the hub; the table says private"]
    assert "**Check first:**" in plan.markdown()


def test_the_checklist_has_the_runbook_paths_and_exact_text_to_paste():
    text = checklist(plan_segments(TABLE, None), HUB_URL)
    assert (
        "Hub Settings > Membership Configurations > Segments, then 'add segment' named `Department`" in text
    )
    assert (
        "Hub Settings > Membership Configurations > Private Segments, then 'add private segment' named `Office`"
        in text
    )
    assert "Bulk Actions > Bulk add options" in text
    assert "```\nEngineering\nSales\n```" in text and "```\nLondon\nParis\n```" in text


def test_a_wrong_token_is_a_clear_hub_error(hub):
    client = TenKCHub(api_token="nope", base_url_override=hub.url).get_client(HUB_URL)
    with pytest.raises(HubError, match="401 bad or missing API token"):
        client.list_segments()


@pytest.mark.slow
def test_a_busy_hub_is_retried_after_its_retry_after(hub):
    client = TenKCHub(api_token="hub-test", base_url_override=hub.url).get_client(HUB_URL)
    hub.fail_next("/segments", Response(429, {"message": "slow down"}, headers={"Retry-After": "1"}))
    hub.fail_next("/segments", Response(503, {"message": "deploying"}))

    assert client.create_segment("Team", "public")["name"] == "Team"

    assert [r.method for r in hub.calls("/segments$")] == ["POST", "POST", "POST"]
    assert [s["name"] for s in client.list_segments()] == ["Team"], "created once"


def test_retry_after_is_honoured_up_to_a_minute_else_backoff_doubles():
    assert retry_delay({"Retry-After": "7"}, attempt=0, first_delay=0.5) == 7
    assert retry_delay({"Retry-After": "86400"}, attempt=0, first_delay=0.5) == 60
    assert [retry_delay({}, attempt=n, first_delay=0.5) for n in range(4)] == [0.5, 1, 2, 4]


@flow
def segments_step(customer, wait):
    return update_hub_segments(customer, TABLE, wait)


FAST = WaitSettings(poll_seconds=0.2)


def test_the_step_applies_the_approved_plan_and_a_rerun_asks_nothing(hub_block, hub):
    customer = make_customer(hub_url=HUB_URL + "-" + uuid.uuid4().hex[:6])
    run = FlowInThread(segments_step, f"segments-{uuid.uuid4().hex[:8]}", customer=customer, wait=FAST)
    assert waiting_gate(run.flow_run_id) == "segments-plan"
    assert "| Office | private | create, then add options | 2: London, Paris |" in form_description(
        run.flow_run_id
    )
    assert hub.hub(customer.hub_url).segments == []  # nothing before the approval
    answer(run.flow_run_id, "segments-plan", decision="approve", approver="Casey")
    state = run.result()
    assert str(state.result()) == "2 segment(s) created, 4 option(s) added"

    rerun = segments_step(customer, FAST)  # already in the hub: no gate, no change
    assert str(rerun) == "0 segment(s) created, 0 option(s) added"
    assert len(hub.calls(r"/segments$")) == 2 + 2 + 1  # list, 2 creates, list (apply), list (rerun)


def test_without_a_hub_api_the_csm_gets_the_checklist_and_confirms(prefect_api):
    from tests.conftest import delete_block

    delete_block(TenKCHub, "default")
    customer = make_customer()
    run = FlowInThread(segments_step, f"segments-{uuid.uuid4().hex[:8]}", customer=customer, wait=FAST)
    assert waiting_gate(run.flow_run_id) == "segments-checklist"
    assert "Bulk Actions > Bulk add options" in form_description(run.flow_run_id)
    answer(run.flow_run_id, "segments-checklist", decision="approve", approver="Casey")
    assert str(run.result().result()) == "2 segment(s) updated by the CSM from the checklist"
