"""update-mapping as a deployment run: a new table after go-live is checked, its new segments and
options reach the hub once after approval, and the customer's later SFTP uploads use it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from prefect.deployments import run_deployment

from flows.process_upload import process_upload
from tasks.registry import Registration, register, registration
from tasks.sftp import claim_name
from tests.conftest import make_customer, wait_until
from tests.gates import FlowInThread, answer, form_description, read_run, wait_for_gate, waiting_gate

HEADER = ["Category", "HRIS Field", "HRIS Values", "Notes", "10KC Segment", "10KC Value", "Visibility"]
NEW_KEY = "1UpdateMappingNewTable000000000000000"
NEW_LINK = f"https://docs.google.com/spreadsheets/d/{NEW_KEY}/edit"
NEW_TABLE = [
    HEADER,
    ["Org", "Department", "Engineering", "", "", "", "Public"],
    ["", "", "Sales", "", "", "", ""],
    ["", "", "Marketing", "", "", "", ""],
    ["Place", "Work Location", "LDN", "", "Office", "London", "Private"],
    ["", "", "PAR", "", "", "Paris", ""],
]
BAD_KEY = "1UpdateMappingBlankVisibility00000000"
BAD_LINK = f"https://docs.google.com/spreadsheets/d/{BAD_KEY}/edit"
BAD_TABLE = [*NEW_TABLE[:4], ["Place", "Work Location", "LDN", "", "Office", "London", ""], NEW_TABLE[5]]
CSM = {"approver": "Casey Success"}


def start(customer, link: str):
    parameters = {
        "customer": customer.model_dump(mode="json"),
        "sheet_link": link,
    }
    return run_deployment("update-mapping/update-mapping", parameters=parameters, timeout=0).id


def ended_or_waiting(run):
    return wait_until(
        lambda: (s := read_run(run).state) and (s.is_final() or s.is_paused()) and s,
        timeout=120,
        what="the run to end or wait",
    )


def apply_upload(sftp_server, customer_key: str, text: str) -> str:
    """One upload claimed into `processing/`, through process-upload with its files approved; its claim."""
    processing = sftp_server.root / customer_key / "processing"
    processing.mkdir(parents=True, exist_ok=True)
    claimed = claim_name("staff.csv")
    (processing / claimed).write_text(text)
    upload = FlowInThread(
        process_upload, f"upload-{uuid.uuid4().hex[:8]}", customer_key=customer_key, upload=claimed
    )
    wait_for_gate(upload.flow_run_id, "apply-files")
    answer(upload.flow_run_id, "apply-files", decision="approve", **CSM)
    assert upload.result().is_completed()
    return claimed


def test_a_new_table_adds_what_is_missing_once_and_later_uploads_use_it(
    served,
    sheets,
    sheets_block,
    hub,
    hub_block,
    sftp_block,
    sftp_server,
    slack_block,
    slack,
    clean_registrations,
):
    customer = make_customer()
    sheets.add_spreadsheet(NEW_KEY, {"Data Mapping": NEW_TABLE}, [sheets_block.client_email])
    sheets.add_spreadsheet(BAD_KEY, {"Data Mapping": BAD_TABLE}, [sheets_block.client_email])
    client = hub_block.get_client(customer.hub_url)
    department = client.create_segment("Department", "public")["id"]
    client.add_options(department, ["Engineering", "Sales"])  # from the table at go-live
    before = Registration(
        customer=customer,
        mode="production",
        mapping_link="https://old.example/map",
        upload_frequency="weekly",
        registered_at=datetime(2026, 10, 1, tzinfo=UTC),
    )
    register(before)
    stamped = registration(customer.key).mapping_updated_at  # registered: its table is new
    calls = len(hub.calls("/segments"))

    # the new table has a blank Visibility: the report goes back, nothing reaches the hub
    run = start(customer, BAD_LINK)
    assert waiting_gate(run, timeout=120) == "mapping-table-2"
    assert "- Row 5: the field 'Work Location' needs Public or Private in column G." in form_description(run)
    assert len(hub.calls("/segments")) == calls
    answer(run, "mapping-table-2", sheet_link=f"  {NEW_LINK} ", answered_by="Casey")  # registered trimmed

    # the plan shows what is missing; nothing is applied before the approval
    assert waiting_gate(run, timeout=120) == "segments-plan"
    plan = form_description(run)
    assert "| Department | public | add options | 1: Marketing |" in plan
    assert "| Office | private | create, then add options | 2: London, Paris |" in plan
    assert registration(customer.key).mapping_link == before.mapping_link
    answer(run, "segments-plan", decision="approve", **CSM)
    final = ended_or_waiting(run)
    assert final.is_completed(), final.message

    segments = {(s["name"], s["visibility"]): s["options"] for s in hub.hub(customer.hub_url).segments}
    assert segments == {
        ("Department", "public"): ["Engineering", "Sales", "Marketing"],
        ("Office", "private"): ["London", "Paris"],
    }
    after = registration(customer.key)
    assert stamped and after.mapping_updated_at > stamped  # the status board shows when the table changed
    assert after == before.model_copy(
        update={"mapping_link": NEW_LINK, "mapping_updated_at": after.mapping_updated_at}
    )
    writes = [r for r in hub.calls("/segments") if r.method == "POST"]
    assert len(writes) == 2 + 3  # our setup, then one segment created and two option lists added

    # a re-run with the same table asks nothing and adds nothing
    rerun = start(customer, NEW_LINK)
    final = ended_or_waiting(rerun)
    assert final.is_completed(), final.message
    assert [r for r in hub.calls("/segments") if r.method == "POST"] == writes
    assert {
        (s["name"], s["visibility"]): s["options"] for s in hub.hub(customer.hub_url).segments
    } == segments
    assert registration(customer.key).mapping_link == NEW_LINK
    # issue 23: the same sheet sent again is a new table: mapping-review does not ask this period
    assert registration(customer.key).mapping_updated_at > after.mapping_updated_at

    # issue 19: the next upload is read with the new table: Marketing and PAR (only in it) reach the hub
    apply_upload(
        sftp_server,
        customer.key,
        "Email,First Name,Last Name,Employee Status,Department,Work Location\n"
        "ann@acme.example,Ann,Lee,active,Marketing,PAR\n",
    )
    ann = hub.hub(customer.hub_url).members["ann@acme.example"]
    assert {"Marketing", "Paris"} <= set(ann.values()), ann


def test_rejecting_the_segment_plan_changes_neither_the_hub_nor_the_registration(
    served, sheets, sheets_block, hub, hub_block, clean_registrations
):
    """Issue 19: a reject at segments-plan ends the run Cancelled with who and why; nothing is added
    to the hub and uploads keep the old table."""
    customer = make_customer()
    sheets.add_spreadsheet(NEW_KEY, {"Data Mapping": NEW_TABLE}, [sheets_block.client_email])
    before = Registration(
        customer=customer,
        mode="production",
        mapping_link="https://old.example/map",
        upload_frequency="weekly",
        registered_at=datetime(2026, 10, 1, tzinfo=UTC),
    )
    register(before)
    kept = registration(customer.key)

    run = start(customer, NEW_LINK)
    assert waiting_gate(run, timeout=120) == "segments-plan"
    answer(run, "segments-plan", decision="reject", reason="the customer sends another table", **CSM)
    final = ended_or_waiting(run)
    assert final.is_cancelled(), final.message
    assert "rejected by Casey Success: the customer sends another table" in final.message
    assert hub.hub(customer.hub_url).segments == []
    assert [r for r in hub.calls("/segments") if r.method == "POST"] == []
    assert registration(customer.key) == kept


OLD_KEY = "1UpdateMappingOldTable000000000000000"
OLD_LINK = f"https://docs.google.com/spreadsheets/d/{OLD_KEY}/edit"
OLD_TABLE = [*NEW_TABLE[:3], *NEW_TABLE[4:]]  # no Marketing


def all_slack_texts(slack) -> str:
    return "\n".join(m["text"] for c in list(slack.channels.values()) for m in list(c.messages))


def applied_with_old_table(customer, sheets, sheets_block, hub, hub_block, sftp_server) -> Path:
    """An SFTP customer whose last applied upload was made with OLD_TABLE; its kept files folder.
    Marketing is unmapped then, so Ann was not updated; NEW_TABLE maps it."""
    from tasks.files_dir import files_dir

    sheets.add_spreadsheet(OLD_KEY, {"Data Mapping": OLD_TABLE}, [sheets_block.client_email])
    sheets.add_spreadsheet(NEW_KEY, {"Data Mapping": NEW_TABLE}, [sheets_block.client_email])
    client = hub_block.get_client(customer.hub_url)
    client.add_options(client.create_segment("Department", "public")["id"], ["Engineering", "Sales"])
    client.add_options(client.create_segment("Office", "private")["id"], ["London", "Paris"])
    members = hub.hub(customer.hub_url).members
    members["ann@acme.example"] = {"Email": "ann@acme.example", "First Name": "Ann", "Last Name": "Lee",
                                   "Status": "active", "Department": "Sales", "Office": "Paris"}  # fmt: skip
    members["bob@acme.example"] = {"Email": "bob@acme.example", "First Name": "Bob", "Last Name": "Ode",
                                   "Status": "active", "Department": "Engineering", "Office": "London"}  # fmt: skip
    register(
        Registration(
            customer=customer,
            mode="production",
            mapping_link=OLD_LINK,
            upload_frequency="weekly",
            registered_at=datetime(2026, 10, 1, tzinfo=UTC),
        )
    )
    claimed = apply_upload(
        sftp_server,
        customer.key,
        "Email,First Name,Last Name,Employee Status,Department,Work Location\n"
        "ann@acme.example,Ann,Lee,active,Marketing,PAR\n"
        "bob@acme.example,Bob,Ode,active,Engineering,LDN\n",
    )
    kept = files_dir() / customer.key / Path(claimed).stem
    assert (kept / "inputs" / "upload.csv").is_file() and (kept / "inputs" / "members.csv").is_file()

    return kept


def test_the_gate_shows_what_the_new_table_changes_on_the_last_applied_upload(
    served,
    sheets,
    sheets_block,
    hub,
    hub_block,
    sftp_block,
    sftp_server,
    slack_block,
    slack,
    clean_registrations,
):
    """Issue 23 §3: before segments-plan is approved, its form and Slack notice show the what-if of
    the new table on the last applied upload (the engine on the files kept for it), or say plainly
    that purge-old-files deleted them."""
    customer = make_customer()
    kept = applied_with_old_table(customer, sheets, sheets_block, hub, hub_block, sftp_server)

    # purged: said plainly at the gate
    aside = kept.with_name("aside")
    kept.rename(aside)
    run = start(customer, NEW_LINK)
    assert waiting_gate(run, timeout=240) == "segments-plan"
    assert (
        "**What-if on the last applied upload** `staff.csv`: its files were deleted by purge-old-files "
        "after the retention period, so no what-if can be computed" in form_description(run)
    )
    answer(run, "segments-plan", decision="reject", reason="see the what-if first", **CSM)
    assert ended_or_waiting(run).is_cancelled()

    # kept: the engine's numbers on the form and in the Slack notice
    aside.rename(kept)
    run = start(customer, NEW_LINK)
    assert waiting_gate(run, timeout=240) == "segments-plan"
    shown = form_description(run)
    assert "| Department | 1 | 1: `Marketing` | 0 |" in shown  # Ann: Sales -> Marketing
    assert "| Office | 0 | 0 | 0 |" in shown
    assert "| profile updates | 0 | 1 |" in shown
    assert "ann@" not in shown and "Ann" not in shown
    wait_until(
        lambda: "Department: 1 member(s) change, 1 value(s) newly mapped" in all_slack_texts(slack),
        timeout=120,
        what="the what-if in the Slack notice",
    )
    answer(run, "segments-plan", decision="approve", **CSM)
    final = ended_or_waiting(run)
    assert final.is_completed(), final.message
    assert registration(customer.key).mapping_link == NEW_LINK
