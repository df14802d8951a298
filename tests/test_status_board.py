"""The status board in a real browser (Playwright driving Debian's chromium), and its artifact: one
row per customer, what needs a person first, filtered by CSM."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prefect.client.orchestration import get_client

from benchmarks.status_board import customer_form, flow_ids, seed_progress, seed_run
from tests.conftest import ServerThread, set_wait_settings

FAILURE = (
    "Flow run encountered an exception: EmailRefused: the mail server refused 'Next steps' (550 no such user)\n"
    "Traceback (most recent call last): ..."
)
FAILED_FLAG = "run failed: Flow run encountered an exception: EmailRefused: the mail server refused 'Next steps' (550 no such user)"


@pytest.fixture
def customers(prefect_api, clean_registrations):
    """Six customers of one CSM (unique to this test) in different states, plus one of another CSM."""
    from tasks.customer import Customer
    from tasks.registry import Registration, register

    csm = f"board-{uuid.uuid4().hex[:6]}@10kc.example"
    other = f"other-{uuid.uuid4().hex[:6]}@10kc.example"
    n = uuid.uuid4().int % 10**8
    forms = {name: customer_form(n + i, csm=csm, company=name) for i, name in enumerate("ABCDEF", start=1)}
    forms["G"] = customer_form(n + 7, csm=other, company="G")

    def params(name):
        return {"customer": forms[name]}

    with get_client(sync_client=True) as client:
        flows = flow_ids(client)
        # Created in the order the board must show them: waiting on a person, oldest first; then the
        # customer; then nobody.
        b = seed_run(client, flows, "setup-guides", params("B"), "PAUSED", "setup-guides-email")
        a = seed_run(client, flows, "api-integration", params("A"), "PAUSED", "integration-on")
        seed_progress(client, a, "api-integration", forms["A"], done=4, note="engineering (usually 1–2 days)")
        seed_run(client, flows, "sftp-integration", params("E"), "FAILED", message=FAILURE)
        register(
            Registration(
                customer=Customer(**forms["F"]),
                mode="production",
                mapping_link="/tmp/m.csv",
                upload_frequency="weekly",
                registered_at=datetime.now(UTC) - timedelta(days=9),  # first upload due 2 days ago
            )
        )
        seed_run(client, flows, "sftp-integration", params("F"), "COMPLETED")
        key_f = Customer(**forms["F"]).key
        seed_run(
            client,
            flows,
            "process-upload",
            {"customer_key": key_f, "upload": "x.csv"},
            "PAUSED",
            "mass-deletion",
        )
        seed_run(client, flows, "sftp-integration", params("C"), "PAUSED", "production-upload")
        seed_run(client, flows, "api-integration", params("D"), "COMPLETED")
        seed_run(client, flows, "setup-guides", params("G"), "PAUSED", "customer-choice")
    return {"csm": csm, "other": other, "b": b}


def test_the_board_lists_what_needs_a_person_first_and_filters_by_csm(customers, browser):
    from starlette.applications import Starlette

    from webapp.board import routes

    server = ServerThread(Starlette(routes=routes()))
    try:
        page = browser.new_page()
        page.goto(f"{server.url}/board")
        page.select_option("select[name=csm]", customers["csm"])  # submits the filter
        page.wait_for_url("**/board?csm=*")
        rows = page.locator("#board tbody tr")
        table = [
            {
                column: rows.nth(i).locator(f"td.{column}").inner_text()
                for column in (
                    "customer",
                    "path",
                    "step",
                    "waiting-on",
                    "flags",
                    "last-upload",
                    "next-upload-expected",
                )
            }
            for i in range(rows.count())
        ]
        run_link = rows.nth(0).locator("td.run a").get_attribute("href")
    finally:
        server.stop()

    assert [row["customer"] for row in table] == ["B", "A", "E", "F", "C", "D"]
    by_name = {row["customer"]: row for row in table}
    assert by_name["B"] | {"last-upload": "", "next-upload-expected": ""} == {
        "customer": "B",
        "path": "not chosen",
        "step": "setup-guides: setup-guides-email",
        "waiting-on": "CSM",
        "flags": "",
        "last-upload": "",
        "next-upload-expected": "",
    }
    assert by_name["A"]["waiting-on"] == "engineering" and by_name["A"]["path"] == "API"
    assert by_name["A"]["step"] == "api-integration 5. fifth step (engineering (usually 1–2 days))"
    assert (by_name["E"]["waiting-on"], by_name["E"]["flags"]) == ("CSM / on-call", FAILED_FLAG)
    assert by_name["F"]["path"] == "SFTP" and by_name["F"]["flags"] == "mass-deletion hold, upload overdue"
    assert by_name["F"]["next-upload-expected"] and not by_name["F"]["last-upload"]
    assert by_name["C"]["waiting-on"] == "customer" and by_name["C"]["path"] == "SFTP"
    assert by_name["D"]["waiting-on"] == "nobody"
    assert run_link.endswith(f"/runs/flow-run/{customers['b']}")
    assert "G" not in by_name  # another CSM's customer


def test_the_status_board_flow_publishes_the_table_artifact(customers):
    from flows.status_board import status_board
    from tasks.status_board import build_board

    assert status_board() >= 7
    with get_client(sync_client=True) as client:
        (artifact,) = client.request(
            "POST", "/artifacts/latest/filter", json={"artifacts": {"key": {"any_": ["status-board"]}}}
        ).json()
    table = json.loads(artifact["data"]) if isinstance(artifact["data"], str) else artifact["data"]
    mine = [row["customer"] for row in table if row["CSM"] == customers["csm"]]
    assert mine == ["B", "A", "E", "F", "C", "D"]
    [failed] = [row for row in table if row["CSM"] == customers["csm"] and row["customer"] == "E"]
    assert (failed["waiting on"], failed["flags"]) == ("CSM / on-call", FAILED_FLAG)

    # Gates still waiting past the reminder interval an operator set (`hris_wait_settings`) are flagged.
    set_wait_settings(poll_seconds=0.2, remind_after_hours=48)
    try:
        day, days = (build_board(now=datetime.now(UTC) + timedelta(hours=h)) for h in (25, 49))
    finally:
        set_wait_settings(poll_seconds=0.2, remind_after_hours=1)
    flags = {row.company: row.flags for row in day if row.csm == customers["csm"]}
    assert flags["B"] == flags["A"] == flags["C"] == []  # a day is not yet past 48 hours
    flags = {row.company: row.flags for row in days if row.csm == customers["csm"]}
    assert flags["B"] == flags["A"] == flags["C"] == ["waiting past reminder"]
    assert flags["D"] == [] and flags["E"] == [FAILED_FLAG]
    assert flags["F"] == ["waiting past reminder", "mass-deletion hold", "upload overdue"]


def test_a_customer_idle_for_a_while_keeps_its_row_through_its_progress_artifact(prefect_api, monkeypatch):
    """The board reads only the newest finished runs; an older customer's latest run comes from the
    progress artifact it wrote, so it still shows where that customer stands."""
    import tasks.status_board as board

    csm = f"idle-{uuid.uuid4().hex[:6]}@10kc.example"
    n = uuid.uuid4().int % 10**8
    idle, busy = customer_form(n, csm=csm, company="Idle"), customer_form(n + 1, csm=csm, company="Busy")
    with get_client(sync_client=True) as client:
        flows = flow_ids(client)
        old = seed_run(client, flows, "api-integration", {"customer": idle}, "COMPLETED")
        seed_progress(client, old, "api-integration", idle, done=6)
        for _ in range(2):  # newer finished runs of another customer push it out of the newest read
            seed_run(client, flows, "setup-guides", {"customer": busy}, "COMPLETED")
    monkeypatch.setattr(board, "NEWEST_FINISHED", 1)

    rows = {row.company: row for row in board.build_board() if row.csm == csm}
    assert (rows["Idle"].path, rows["Idle"].step, rows["Idle"].waiting_on) == (
        "API",
        "api-integration: all steps done",
        "nobody",
    )
    assert rows["Idle"].run_url.endswith(f"/runs/flow-run/{old}")
    assert (rows["Busy"].path, rows["Busy"].step) == ("not chosen", "setup-guides")
