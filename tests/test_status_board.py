"""The status board in a real browser (Playwright driving Debian's chromium), and its artifact: one
row per customer, what needs a person first, filtered by CSM."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from benchmarks.status_board import customer_form, flow_ids, seed_progress, seed_run
from tests.conftest import ServerThread, set_wait_settings

FAILURE = (
    "Flow run encountered an exception: EmailRefused: the mail server refused 'Next steps' (550 no such user)\n"
    "Traceback (most recent call last): ..."
)
FAILED_FLAG = "run failed: Flow run encountered an exception: EmailRefused: the mail server refused 'Next steps' (550 no such user)"


COMPANIES = {  # the test's letters, and the names the board (and its screenshot) shows
    "A": "Aster Analytics",
    "B": "Birchwood Legal",
    "C": "Cobalt Freight",
    "D": "Driftwood Hotels",
    "E": "Ember Robotics",
    "F": "Fjord Foods",
    "G": "Granite Labs",
    "H": "Harbor Health",
    "I": "Iris Insurance",
}
DOCS = Path(__file__).resolve().parent.parent / "docs"
LETTER = {name: letter for letter, name in COMPANIES.items()}
H_UPLOADS = [  # Harbor Health's last uploads: rows, invites, deletions, unmapped values
    (1180, 1180, 0, 0),
    (1194, 16, 2, 0),
    (1201, 9, 2, 0),
    (1188, 3, 16, 0),
    (1206, 18, 0, 2),
]
MAPPING_SET = datetime(2026, 10, 14, 9, 30, tzinfo=UTC)


def seed_upload(
    client, flows, customer_key: str, n: int, rows: int, invites: int, deletions: int, unmapped: int
):
    """A completed process-upload run and the `upload-<key>` table it publishes at step 8."""
    from tasks.contracts import upload_artifact

    run = seed_run(
        client, flows, "process-upload", {"customer_key": customer_key, "upload": f"{n}.csv"}, "COMPLETED"
    )
    table = {
        "upload": f"staff-{n:02d}.csv", "claimed as": f"{n}.csv", "channel": "#monitoring", "rows": rows,
        "invites": invites, "updates": 4, "deletions": deletions, "deactivations": 0, "reactivations": 0,
        "rejected_rows": 0, "missing columns": 0, "unmapped values": unmapped,
    }  # fmt: skip
    client.request(
        "POST",
        "/artifacts/",
        json={
            "key": upload_artifact(customer_key),
            "type": "table",
            "data": json.dumps([table]),
            "flow_run_id": run,
        },
    )


def save_screenshot(page, name: str) -> None:
    """The whole page as docs/<name> when HRIS_UPDATE_SCREENSHOTS=1 (as tests/test_browser.py does)."""
    if os.environ.get("HRIS_UPDATE_SCREENSHOTS") == "1":
        page.screenshot(path=DOCS / name, full_page=True)


@pytest.fixture
def customers(prefect_api, clean_registrations):
    """Eight customers of one CSM (unique to this test) in different states, plus one of another CSM."""
    from tasks.customer import Customer
    from tasks.registry import Registration, Seen, note_seen, register

    csm = f"board-{uuid.uuid4().hex[:6]}@10kc.example"
    other = f"other-{uuid.uuid4().hex[:6]}@10kc.example"
    n = uuid.uuid4().int % 10**8
    forms = {
        letter: customer_form(n + i, csm=other if letter == "G" else csm, company=COMPANIES[letter])
        for i, letter in enumerate(COMPANIES, start=1)
    }
    now = datetime.now(UTC)

    def params(name):
        return {"customer": forms[name]}

    def watched(letter: str, registered_days_ago: int, **fields) -> str:
        reg = Registration(
            customer=Customer(**forms[letter]),
            mode="production",
            upload_frequency="weekly",
            registered_at=now - timedelta(days=registered_days_ago),
            **({"mapping_link": "/tmp/m.csv"} | fields),
        )
        register(reg)
        return reg.customer.key

    with get_client(sync_client=True) as client:
        flows = flow_ids(client)
        # Harbor Health: five uploads, the last 9 days ago, so the weekly one is 2 days overdue.
        key_h = watched(
            "H",
            60,
            mapping_link="https://docs.google.com/spreadsheets/d/harbor",
            mapping_updated_at=MAPPING_SET,
        )
        note_seen(key_h, Seen(last_upload_at=now - timedelta(days=9)))
        seed_run(client, flows, "sftp-integration", params("H"), "COMPLETED")
        for i, counts in enumerate(H_UPLOADS, start=1):
            seed_upload(client, flows, key_h, i, *counts)
        # Then in the order the board must show them: waiting on a person, oldest first; then the
        # customer; then nobody.
        b = seed_run(client, flows, "setup-guides", params("B"), "PAUSED", "setup-guides-email")
        a = seed_run(client, flows, "api-integration", params("A"), "PAUSED", "integration-on")
        seed_progress(client, a, "api-integration", forms["A"], done=4, note="engineering (usually 1–2 days)")
        seed_run(client, flows, "sftp-integration", params("E"), "FAILED", message=FAILURE)
        key_f = watched("F", 9)  # first upload due 2 days ago
        seed_run(client, flows, "sftp-integration", params("F"), "COMPLETED")
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
        # Iris Insurance: uploads weekly, the last two days ago: fine.
        key_i = watched("I", 30)
        note_seen(key_i, Seen(last_upload_at=now - timedelta(days=2)))
        seed_run(client, flows, "sftp-integration", params("I"), "COMPLETED")
        for i in range(1, 4):
            seed_upload(client, flows, key_i, i, 400 + i, 2 * i, 1, 0)
        seed_run(client, flows, "setup-guides", params("G"), "PAUSED", "customer-choice")
    return {"csm": csm, "other": other, "b": b}


def test_the_board_lists_what_needs_a_person_first_and_filters_by_csm(customers, browser):
    from starlette.applications import Starlette

    from webapp.board import routes

    server = ServerThread(Starlette(routes=routes()))
    try:
        page = browser.new_page(viewport={"width": 1600, "height": 900})
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
                    "mapping",
                )
            }
            | {
                "uploads": rows.nth(i).locator("td.uploads g.upload").count(),
                "bars": rows.nth(i).locator("td.uploads rect.bar").count(),
                "overdue": rows.nth(i).locator("td.uploads .overdue-marker").count(),
                "due-slot": rows.nth(i).locator("td.uploads g.due-slot").count(),
            }
            for i in range(rows.count())
        ]
        run_link = rows.nth(1).locator("td.run a").get_attribute("href")
        card = page.locator(f'#csm-counts a[data-csm="{customers["csm"]}"]')
        counts = {
            kind: card.locator(f".count.{kind} b").inner_text() for kind in ("needs", "customer", "fine")
        }
        selected = card.get_attribute("class")
        bar_heights = [
            float(h)
            for h in rows.nth(0)
            .locator("td.uploads rect.bar.deletions")
            .evaluate_all("rs => rs.map(r => r.getAttribute('height'))")
        ]
        marker = rows.nth(0).locator(".overdue-marker").inner_text()
        save_screenshot(page, "status-board.png")
    finally:
        server.stop()

    assert [LETTER[row["customer"]] for row in table] == ["H", "B", "A", "E", "F", "C", "D", "I"]
    by_name = {LETTER[row["customer"]]: row for row in table}
    assert {k: by_name["B"][k] for k in ("customer", "path", "step", "waiting-on", "flags", "uploads")} == {
        "customer": COMPANIES["B"],
        "path": "not chosen",
        "step": "setup-guides: setup-guides-email",
        "waiting-on": "CSM",
        "flags": "",
        "uploads": 0,
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

    # The chart: three bars (rows, invites, deletions) per upload, on one (log) scale with the rows:
    # 16 deletions stand out beside 1,200 rows. An overdue upload is marked (and a dashed slot drawn)
    # only where it is overdue.
    assert (by_name["H"]["uploads"], by_name["H"]["bars"]) == (5, 15)
    assert (by_name["I"]["uploads"], by_name["I"]["bars"]) == (3, 9)
    assert bar_heights[3] > bar_heights[1] == bar_heights[2] > bar_heights[0] == 1  # 16 > 2 = 2 > 0 (a stub)
    assert by_name["H"]["waiting-on"] == "customer" and by_name["H"]["flags"] == "upload overdue"
    assert by_name["H"]["last-upload"] and by_name["H"]["next-upload-expected"]
    overdue = {letter for letter, row in by_name.items() if row["overdue"]}
    assert overdue == {letter for letter, row in by_name.items() if row["due-slot"]} == {"H", "F"}
    assert marker == "upload 2 days overdue"
    # The mapping table: its link, when it was last set, and what the last upload said of it.
    assert by_name["H"]["mapping"].splitlines() == [
        "mapping sheet",
        f"updated {MAPPING_SET:%Y-%m-%d} ({(datetime.now(UTC) - MAPPING_SET).days} days ago)",
        "last upload: 2 unmapped values",
    ]
    assert by_name["I"]["mapping"].splitlines()[-1] == "last upload matched it"
    assert by_name["A"]["mapping"] == "–"  # an API customer has no registration

    # Counts per CSM: needs a person (H, B, A, E, F), waiting on the customer (C), fine (D, I).
    assert counts == {"needs": "5", "customer": "1", "fine": "2"}
    assert "selected" in selected


def test_the_status_board_flow_publishes_the_table_artifact(customers):
    from flows.status_board import status_board
    from tasks.status_board import build_board

    assert status_board() >= 9
    with get_client(sync_client=True) as client:
        (artifact,) = client.request(
            "POST", "/artifacts/latest/filter", json={"artifacts": {"key": {"any_": ["status-board"]}}}
        ).json()
    table = json.loads(artifact["data"]) if isinstance(artifact["data"], str) else artifact["data"]
    mine = [LETTER[row["customer"]] for row in table if row["CSM"] == customers["csm"]]
    assert mine == ["H", "B", "A", "E", "F", "C", "D", "I"]
    [failed] = [row for row in table if row["CSM"] == customers["csm"] and row["customer"] == COMPANIES["E"]]
    assert (failed["waiting on"], failed["flags"]) == ("CSM / on-call", FAILED_FLAG)

    # Gates still waiting past the reminder interval an operator set (`hris_wait_settings`) are flagged.
    set_wait_settings(poll_seconds=0.2, remind_after_hours=48)
    try:
        day, days = (build_board(now=datetime.now(UTC) + timedelta(hours=h)) for h in (25, 49))
    finally:
        set_wait_settings(poll_seconds=0.2, remind_after_hours=1)
    flags = {LETTER[row.company]: row.flags for row in day if row.csm == customers["csm"]}
    assert flags["B"] == flags["A"] == flags["C"] == []  # a day is not yet past 48 hours
    flags = {LETTER[row.company]: row.flags for row in days if row.csm == customers["csm"]}
    assert flags["B"] == flags["A"] == flags["C"] == ["waiting past reminder"]
    assert flags["D"] == [] and flags["E"] == [FAILED_FLAG]
    assert flags["F"] == ["waiting past reminder", "mass-deletion hold", "upload overdue"]
    assert flags["H"] == ["upload overdue"] and flags["I"] == []


def test_the_upload_charts_read_a_bounded_number_of_upload_tables(customers, monkeypatch):
    """However many customers upload, the board reads the newest UPLOAD_HISTORY upload tables; a
    customer whose uploads are older still shows its latest one."""
    import tasks.board_reads as reads
    import tasks.status_board as board

    monkeypatch.setattr(reads, "UPLOAD_HISTORY", 4)  # Iris Insurance's 3 and Harbor Health's newest
    rows = {LETTER[row.company]: row for row in board.build_board() if row.csm == customers["csm"]}
    assert [upload.name for upload in rows["I"].uploads] == ["staff-01.csv", "staff-02.csv", "staff-03.csv"]
    assert [upload.name for upload in rows["H"].uploads] == ["staff-05.csv"]
    monkeypatch.setattr(reads, "UPLOAD_HISTORY", 3)  # Iris's only: Harbor's latest from the latest read
    rows = {LETTER[row.company]: row for row in board.build_board() if row.csm == customers["csm"]}
    assert [(upload.name, upload.rows) for upload in rows["H"].uploads] == [("staff-05.csv", 1206)]


def test_a_customer_idle_for_a_while_keeps_its_row_through_its_progress_artifact(prefect_api, monkeypatch):
    """The board reads only the newest finished runs; an older customer's latest run comes from the
    progress artifact it wrote, so it still shows where that customer stands."""
    import tasks.board_reads as reads
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
    monkeypatch.setattr(reads, "NEWEST_FINISHED", 1)

    rows = {row.company: row for row in board.build_board() if row.csm == csm}
    assert (rows["Idle"].path, rows["Idle"].step, rows["Idle"].waiting_on) == (
        "API",
        "api-integration: all steps done",
        "nobody",
    )
    assert rows["Idle"].run_url.endswith(f"/runs/flow-run/{old}")
    assert (rows["Busy"].path, rows["Busy"].step) == ("not chosen", "setup-guides")


def test_a_customer_s_latest_upload_table_charts_its_last_uploads_beyond_the_history_read(
    prefect_api, monkeypatch
):
    """At hundreds of customers the newest UPLOAD_HISTORY tables are a few customers' (docs/performance.md);
    each table carries the customer's earlier uploads, so the latest one alone charts them."""
    import tasks.board_reads as reads
    import tasks.status_board as board
    from tasks.contracts import upload_artifact
    from tasks.upload_history import APPLIED, CARRIED, customer_uploads, upload_table

    csm = f"carried-{uuid.uuid4().hex[:6]}@10kc.example"
    form = customer_form(uuid.uuid4().int % 10**8, csm=csm, company="Carried")
    key = form["email_domains"][0]
    counts = {
        "invites": 1,
        "updates": 2,
        "deletions": 0,
        "deactivations": 0,
        "reactivations": 0,
        "rejected_rows": 0,
    }
    with get_client(sync_client=True) as client:
        flows = flow_ids(client)
        run = seed_run(client, flows, "sftp-integration", {"customer": form}, "COMPLETED")
        for i in range(10):  # as process-upload publishes each upload's table
            earlier = customer_uploads(key)[:CARRIED]
            summary = {**counts, "hris_rows": 100 + i}
            table = upload_table(f"staff-{i:02d}.csv", f"{i}.csv", "#m", summary, APPLIED, "csm", earlier)
            body = {
                "key": upload_artifact(key),
                "type": "table",
                "data": json.dumps(table),
                "flow_run_id": run,
            }
            client.request("POST", "/artifacts/", json=body)
    monkeypatch.setattr(reads, "UPLOAD_HISTORY", 0)  # none of its tables in the history read

    [row] = [row for row in board.build_board() if row.csm == csm]
    assert [(u.name, u.rows) for u in row.uploads] == [(f"staff-{i:02d}.csv", 100 + i) for i in range(2, 10)]
