"""sftp-integration as a deployment run against every stand-in and a real SFTP server, with the
production upload found by sftp-watch and processed by a process-upload deployment run."""

from __future__ import annotations

import pytest
from prefect.deployments import run_deployment

from flows.sftp_watch import sftp_watch
from tasks.registry import registration
from tasks.sftp import original_name
from tests.conftest import make_customer, wait_until
from tests.gates import answer, form_description, read_run, wait_for_gate, waiting_gate

KEY = "1SftpIntegrationMappingSheet0000000000"
LINK = f"https://docs.google.com/spreadsheets/d/{KEY}/edit"
TABLE = [
    ["Category", "HRIS Field", "HRIS Values", "Notes", "10KC Segment", "10KC Value", "Visibility"],
    ["Org", "Department", "Engineering", "", "", "", "Public"],
    ["", "", "Sales", "", "", "", ""],
]
BAD_KEY = "1SftpIntegrationMappingSheetBlankVisib"
BAD_LINK = f"https://docs.google.com/spreadsheets/d/{BAD_KEY}/edit"
BAD_TABLE = [*TABLE[:1], ["Org", "Department", "Engineering", "", "", "", ""], *TABLE[2:]]
SAMPLE = "Email,First Name,Last Name,Employee Status,Department\r\nann@acme.example,Ann,Lee,active,Engineering\r\nnew@acme.example,New,Hire,active,Sales\r\n"
PRODUCTION = SAMPLE + "bo@acme.example,Bo,Day,inactive,Sales\r\n"
# Week 2 has no status column: Bo, deactivated by week 1, must stay deactivated.
WEEK2 = "Email,First Name,Last Name,Department\r\nann@acme.example,Ann,Lee,Sales\r\nnew@acme.example,New,Hire,Sales\r\nbo@acme.example,Bo,Day,Sales\r\ncai@acme.example,Cai,Ng,Engineering\r\n"
WEEK4 = "Email,First Name,Last Name,Employee Status,Department\r\nann@acme.example,Ann,Lee,active,Engineering\r\nbo@acme.example,Bo,Day,inactive,Sales\r\ncai@acme.example,Cai,Ng,active,Engineering\r\ndee@acme.example,Dee,Fox,active,Sales\r\n"
CSM = {"approver": "Casey Success"}


@pytest.mark.timeout(900)  # onboarding and four production uploads, all as deployment runs
def test_sftp_onboarding_then_weekly_production_uploads(
    served,
    smtp_block,
    smtp_server,
    slack_block,
    slack,
    sheets_block,
    sheets,
    hub_block,
    hub,
    sftp_block,
    sftp_server,
    clean_registrations,
):
    customer = make_customer(platform="Personio")
    sheets.add_spreadsheet(KEY, {"Data Mapping": TABLE}, [sheets_block.client_email])
    sheets.add_spreadsheet(BAD_KEY, {"Data Mapping": BAD_TABLE}, [sheets_block.client_email])
    members = hub.hub(customer.hub_url).members
    for email, first, status in [
        ("ann@acme.example", "Ann", "active"),
        ("bo@acme.example", "Bo", "active"),
        ("gone@acme.example", "Gone", "active"),
    ]:
        members[email] = {"Email": email, "First Name": first, "Last Name": "X", "Status": status}
    inbox = sftp_server.root / customer.key
    inbox.mkdir()

    run = run_deployment(
        "sftp-integration/sftp-integration",
        parameters={
            "customer": customer.model_dump(mode="json"),
        },
        timeout=0,
    ).id

    # 1. implementation email, then the customer's answers and sample
    answer(run, "sftp-implementation-email", decision="approve", **CSM)
    assert waiting_gate(run, timeout=120) == "customer-ready"
    [implementation] = smtp_server.handler.messages()
    assert "SFTP" in implementation["Subject"] and implementation["To"] == customer.contact_email
    (inbox / "sample.csv").write_text(SAMPLE)
    answer(
        run,
        "customer-ready",
        upload_frequency="weekly",
        mapping_cadence="quarterly",
        sftp_server_confirmed=True,
        sample_csv="sample.csv",
        mapping_link=BAD_LINK,
        answered_by="Casey",
    )

    # the table has a blank Visibility: the report goes back to the customer, the fixed table goes on
    assert waiting_gate(run, timeout=120) == "mapping-table-2"
    assert "Row 2: the field 'Department' needs Public or Private in column G." in form_description(run)
    assert (inbox / "sample.csv").exists()  # nothing went on with the bad table: the sample is untouched
    assert not [m for m in slack.messages("product-support") if "HRIS integration" in m["text"]]
    answer(run, "mapping-table-2", sheet_link=LINK, answered_by="Casey")

    # 2-4. support request with the sample, the three files in the account channel, review email
    assert waiting_gate(run, timeout=120) == "sftp-review-email"
    request, attachment = [m for m in slack.messages("product-support") if "Waiting" not in m["text"]][:2]
    assert (
        "please create the 3 files from the sample" in request["text"]
        and f"<{customer.hub_url}>" in request["text"]
    )
    assert slack.files[attachment["files"][0]["id"]]["content"] == SAMPLE.encode()
    shared = [m for m in slack.messages("am-acme") if m.get("files")]
    assert {m["files"][0]["name"] for m in shared} == {
        "potential invites.csv",
        "profile updates.csv",
        "profile deletions.csv",
    }
    answer(run, "sftp-review-email", decision="approve", **CSM)
    assert waiting_gate(run, timeout=120) == "customer-confirmed"
    review = smtp_server.handler.messages()[1]
    attached = {part.get_filename(): part.get_content() for part in review.iter_attachments()}
    assert set(attached) == {"potential invites.csv", "profile updates.csv", "profile deletions.csv"}
    assert (
        "new@acme.example" in attached["potential invites.csv"]
        and "gone@acme.example" in attached["profile deletions.csv"]
    )
    answer(run, "customer-confirmed", confirmed_by="Casey", notes="looks right")

    # 5-6. segments, then the production request
    answer(run, "segments-plan", decision="approve", **CSM)
    wait_until(
        lambda: (
            (s := read_run(run).state).is_paused()
            and (s.state_details.pause_key or "").startswith("production-upload")
        ),
        timeout=300,
        what="the run to wait (no form) for the production upload",
    )
    assert [s["name"] for s in hub.hub(customer.hub_url).segments] == ["Department"]
    requests = [m for m in slack.messages("product-support") if "HRIS integration (SFTP)" in m["text"]]
    assert len(requests) == 2 and "please activate production processing" in requests[1]["text"]
    reg = registration(customer.key)
    assert reg.watching and reg.waiting_run_id == str(run) and reg.mapping_link == LINK

    # 7-9, week 1: employees.csv (v1); the watcher claims it, process-upload shares the files and
    # waits for the CSM's apply decision
    (inbox / "employees.csv").write_text(PRODUCTION)
    assert sftp_watch(settle_seconds=0.5)["claimed"] == 1
    week1 = upload_run(customer.key, "employees.csv", 1)
    wait_for_gate(week1, "apply-files", timeout=300)
    assert len(monitoring_shares(slack)) == 1
    assert not read_run(run).state.is_final()  # onboarding waits for the first decision

    # week 2: employees.csv again with new bytes and no status column, while week 1 is undecided:
    # it queues behind week 1 instead of being compared with a hub about to change
    (inbox / "employees.csv").write_text(WEEK2)
    assert sftp_watch(settle_seconds=0.5)["claimed"] == 1
    week2 = upload_run(customer.key, "employees.csv", 2)
    assert waiting_gate(week2, timeout=300) == "queued-1"
    assert len(monitoring_shares(slack)) == 1

    answer(week1, "apply-files", decision="approve", **CSM)
    final = wait_until(
        lambda: (s := read_run(run).state).is_final() and s, timeout=300, what="the onboarding run to end"
    )
    assert final.is_completed(), final.message
    assert read_run(week1).state.is_completed()
    hub_members = hub.hub(customer.hub_url).members
    assert "new@acme.example" in hub_members and "gone@acme.example" not in hub_members
    assert hub_members["bo@acme.example"]["Status"] == "deactivated"

    wait_for_gate(week2, "apply-files", timeout=300)  # week 1 decided: week 2 goes on by itself
    week2_share = monitoring_shares(slack)[1]
    assert "no status column: status unchanged" in week2_share["text"]
    assert "reactivations" not in week2_share["text"] or "0 reactivations" in week2_share["text"]
    assert "Casey Success" in week2_share["text"] and "Imani Manager" in week2_share["text"]
    answer(week2, "apply-files", decision="approve", **CSM)
    wait_until(lambda: read_run(week2).state.is_completed(), timeout=300, what="week 2 to end")
    assert hub.hub(customer.hub_url).members["bo@acme.example"]["Status"] == "deactivated"  # not reactivated

    # week 3: the same bytes as week 2 again -> one duplicate notice, nothing shared or applied
    (inbox / "employees.csv").write_text(WEEK2)
    assert sftp_watch(settle_seconds=0.5)["claimed"] == 1
    week3 = upload_run(customer.key, "employees.csv", 3)
    wait_until(lambda: read_run(week3).state.is_completed(), timeout=300, what="the duplicate to be handled")
    duplicates = [m for m in slack.messages("monitoring-hris-files") if "same content" in m["text"]]
    assert len(duplicates) == 1 and "employees.csv" in duplicates[0]["text"]

    # week 4: a new file name
    (inbox / "staff-2026-12.csv").write_text(WEEK4)
    assert sftp_watch(settle_seconds=0.5)["claimed"] == 1
    week4 = upload_run(customer.key, "staff-2026-12.csv", 1)
    answer_when_waiting(week4, "apply-files", decision="approve", **CSM)
    wait_until(lambda: read_run(week4).state.is_completed(), timeout=300, what="week 4 to end")

    # counted at the stand-ins: 3 shares, 3 apply gates, 1 duplicate notice, the hub = the last file
    assert len(monitoring_shares(slack)) == 3
    apply_notices = [
        m
        for m in slack.messages("dm-" + slack.users["casey@10kc.example"].lower())
        if "Apply Acme Corp's files through the hub API?" in m["text"]
    ]
    assert len(apply_notices) == 3
    hub_members = hub.hub(customer.hub_url).members
    truth = {line.split(",")[0] for line in WEEK4.strip().splitlines()[1:]}
    assert set(hub_members) == truth
    assert all(hub_members[e]["Status"] != "deactivated" for e in truth - {"bo@acme.example"})
    assert [action for action, _ in hub.hub(customer.hub_url).uploads].count("invite") == 3
    archived = sorted(original_name(p.name) for p in (inbox / "archive").iterdir())
    assert archived == ["employees.csv"] * 3 + ["sample.csv", "staff-2026-12.csv"]

    # two onboarding emails, then one receipt per applied upload (runs resumed from the top after
    # each gate), none for the duplicate
    mail = smtp_server.handler.messages()
    receipts = [m["Subject"] for m in mail if m["Subject"].endswith(": what we changed on 10KC")]
    assert len(mail) == 5 and receipts == [
        f"Your file {name}: what we changed on 10KC"
        for name in ("employees.csv", "employees.csv", "staff-2026-12.csv")
    ]
    assert sftp_watch(settle_seconds=0.5)["claimed"] == 0  # each processed once
    assert list((inbox / "processing").iterdir()) == []
    assert (
        registration(customer.key).mode == "production" and registration(customer.key).waiting_run_id is None
    )
    assert registration(customer.key).upload_frequency == "weekly"
    assert registration(customer.key).mapping_cadence == "quarterly"  # mapping-review asks on it


def monitoring_shares(slack) -> list[dict]:
    """Step 8's summaries in #monitoring-hris-files (each with its files in the thread)."""
    return [m for m in slack.messages("monitoring-hris-files") if "potential invites:" in m["text"]]


def upload_run(customer_key: str, name: str, nth: int):
    """The process-upload run of the nth claim of `name` for this customer."""
    from tasks.upload_queue import upload_runs

    def find():
        runs = [
            r
            for r in upload_runs(customer_key, live_only=False)
            if original_name(r.parameters["upload"]) == name
        ]
        return runs[nth - 1].id if len(runs) >= nth else None

    return wait_until(find, timeout=300, what=f"process-upload of {name} #{nth}")


def answer_when_waiting(run, gate, **values):
    wait_for_gate(run, gate, timeout=300)
    answer(run, gate, **values)


def test_a_sample_name_not_in_the_inbox_is_said_and_asked_again_and_a_rejected_review_email_stops_it(
    prefect_api,
    smtp_block,
    smtp_server,
    slack_block,
    slack,
    sheets_block,
    sheets,
    sftp_block,
    sftp_server,
    hub_block,
    hub,
):
    """Issue 20: a sample file name that is not in the inbox ended the onboarding as Failed with
    FileNotFoundError. The same form comes back with one line saying what is there, and waits.
    Issue 19: rejecting the review email (step 4) ends the run Cancelled with who and why; the email
    is not sent and nothing after it happens."""
    import uuid

    from flows.sftp_integration import sftp_integration
    from tests.gates import FlowInThread

    customer = make_customer(platform="Personio")
    sheets.add_spreadsheet(BAD_KEY, {"Data Mapping": BAD_TABLE}, [sheets_block.client_email])
    inbox = sftp_server.root / customer.key
    inbox.mkdir()
    (inbox / "staff.csv").write_text(SAMPLE)
    run = FlowInThread(sftp_integration, f"onboarding-{uuid.uuid4().hex[:8]}", customer=customer)
    answer(run.flow_run_id, "sftp-implementation-email", decision="approve", **CSM)
    ready = {"upload_frequency": "weekly", "sftp_server_confirmed": True, "mapping_link": BAD_LINK}
    answer(run.flow_run_id, "customer-ready", sample_csv="sample.csv", answered_by="Casey", **ready)

    assert waiting_gate(run.flow_run_id, timeout=120) == "customer-ready-2"
    assert f"`sample.csv` is not in `{customer.key}/`; files there: `staff.csv`" in form_description(
        run.flow_run_id
    )
    assert read_run(run.flow_run_id).state.is_paused()
    answer(run.flow_run_id, "customer-ready-2", sample_csv="staff.csv", answered_by="Casey", **ready)
    assert waiting_gate(run.flow_run_id, timeout=120) == "mapping-table-2"  # on to the mapping table

    sheets.add_spreadsheet(KEY, {"Data Mapping": TABLE}, [sheets_block.client_email])
    answer(run.flow_run_id, "mapping-table-2", sheet_link=LINK, answered_by="Casey")
    assert waiting_gate(run.flow_run_id, timeout=120) == "sftp-review-email"
    answer(run.flow_run_id, "sftp-review-email", decision="reject", reason="wrong sample", **CSM)
    state = run.result()
    assert state.is_cancelled() and "rejected by Casey Success: wrong sample" in state.message
    assert len(smtp_server.handler.messages()) == 1  # the implementation email only
    assert hub.hub(customer.hub_url).segments == []  # step 5 never came
    requests = [m for m in slack.messages("product-support") if "HRIS integration (SFTP)" in m["text"]]
    assert len(requests) == 1  # the sample's request; no production request
