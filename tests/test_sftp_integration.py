"""sftp-integration as a deployment run against every stand-in and a real SFTP server, with the
production upload found by sftp-watch and processed by a process-upload deployment run."""

from __future__ import annotations

from prefect.deployments import run_deployment

from flows.approvals import WaitSettings
from flows.sftp_watch import sftp_watch
from tasks.registry import registration
from tests.conftest import make_customer, wait_until
from tests.gates import answer, read_run, wait_for_gate, waiting_gate

KEY = "1SftpIntegrationMappingSheet0000000000"
LINK = f"https://docs.google.com/spreadsheets/d/{KEY}/edit"
TABLE = [
    ["Category", "HRIS Field", "HRIS Values", "Notes", "10KC Segment", "10KC Value", "Visibility"],
    ["Org", "Department", "Engineering", "", "", "", "Public"],
    ["", "", "Sales", "", "", "", ""],
]
SAMPLE = "Email,First Name,Last Name,Employee Status,Department\r\nann@acme.example,Ann,Lee,active,Engineering\r\nnew@acme.example,New,Hire,active,Sales\r\n"
PRODUCTION = SAMPLE + "bo@acme.example,Bo,Day,inactive,Sales\r\n"
CSM = {"approver": "Casey Success"}


def test_sftp_integration_end_to_end(
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
            "wait": WaitSettings(poll_seconds=0.5).model_dump(),
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
        upload_frequency="monthly",
        sftp_server_confirmed=True,
        sample_csv="sample.csv",
        mapping_link=LINK,
        answered_by="Casey",
    )

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
    assert waiting_gate(run, timeout=120) == "production-upload"
    assert [s["name"] for s in hub.hub(customer.hub_url).segments] == ["Department"]
    requests = [m for m in slack.messages("product-support") if "HRIS integration (SFTP)" in m["text"]]
    assert len(requests) == 2 and "please activate production processing" in requests[1]["text"]
    reg = registration(customer.key)
    assert reg.watching and reg.waiting_run_id == str(run)

    # 7-8. the customer uploads; the watcher claims it and process-upload resumes the run
    (inbox / "staff-2026-11.csv").write_text(PRODUCTION)
    assert sftp_watch(settle_seconds=0.5)["claimed"] == 1
    wait_for_gate(run, "apply-files", timeout=180)
    production_shares = [m for m in slack.messages("monitoring-hris-files") if m.get("files")]
    assert {m["files"][0]["name"] for m in production_shares} == {
        "potential invites.csv",
        "profile updates.csv",
        "profile deletions.csv",
    }
    assert sorted(p.name.split("-", 1)[1] for p in (inbox / "archive").iterdir()) == [
        "sample.csv",
        "staff-2026-11.csv",
    ]

    # 9. the CSM approves applying the files through the hub API
    answer(run, "apply-files", decision="approve", **CSM)
    final = wait_until(
        lambda: (s := read_run(run).state).is_final() and s, timeout=120, what="the run to end"
    )
    assert final.is_completed(), final.message
    assert [action for action, _ in hub.hub(customer.hub_url).uploads] == ["invite", "update", "remove"]
    hub_members = hub.hub(customer.hub_url).members
    assert "new@acme.example" in hub_members and "gone@acme.example" not in hub_members
    assert hub_members["bo@acme.example"]["Status"] == "deactivated"

    assert len(smtp_server.handler.messages()) == 2
    assert sftp_watch(settle_seconds=0.5)["claimed"] == 0  # processed once
    assert (
        registration(customer.key).mode == "production" and registration(customer.key).waiting_run_id is None
    )
