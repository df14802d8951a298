"""Deletion grace (issue 23 §6): a member missing from an upload is deactivated and held until their
grace ends, deleted only if still missing then, reactivated with their profile if they come back.

The stage on the engine's real files (fast), the stored record and registration read by later code,
then weeks of uploads through process-upload against the SFTP server and the hub stand-in.
"""

from __future__ import annotations

import csv
import json
import uuid
from datetime import date
from pathlib import Path

from tasks.approval_notices import files_details
from tasks.deletion_grace import GRACE_COLUMN, apply_grace, grace_in_words, member_key
from tasks.files import DELETIONS, HUB_API_DIR, SUMMARY, UPDATES, generate_files
from tasks.records import DeletionGrace, load_record
from tasks.registry import Registration

MAPPING = """Category,HRIS Field,HRIS Values,Notes,10KC Segment,10KC Value,Visibility
Org,Department,Engineering,,,,Public
,,Sales,,,,
"""
MEMBERS = (
    "Email,First Name,Last Name,Status,Department\n"
    "ann@acme.example,Ann,Lee,active,Engineering\n"
    "old@acme.example,Old,Timer,active,Sales\n"
)
ANN_ONLY = (
    "Email,First Name,Last Name,Employee Status,Department\nann@acme.example,Ann,Lee,active,Engineering\n"
)
BOTH = ANN_ONLY + "old@acme.example,Old,Timer,active,Sales\n"
FIXTURES = Path(__file__).parent / "once_records" / "deletion-grace"


def rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def engine(tmp_path: Path, hris: str, members: str = MEMBERS) -> tuple[Path, Path, dict]:
    """The engine's files for one upload (with the hub-API copies, as process-upload makes them)."""
    (tmp_path / "map.csv").write_text(MAPPING)
    (tmp_path / "hris.csv").write_text(hris)
    (tmp_path / "members.csv").write_text(members)
    out = tmp_path / f"out-{uuid.uuid4().hex[:6]}"
    result = generate_files(
        tmp_path / "hris.csv", tmp_path / "members.csv", tmp_path / "map.csv", out, hub_copies=True
    )
    return out, tmp_path / "members.csv", dict(result.summary)


def test_a_member_missing_within_grace_is_held_deactivated_in_both_copies_not_deleted(tmp_path):
    out, members, summary = engine(tmp_path, ANN_ONLY)
    assert summary["deletions"] == 1  # the runbook as written: deleted
    summary, grace = apply_grace(out, members, summary, {}, date(2026, 12, 8), 14)

    for folder in (out, out / HUB_API_DIR):
        assert rows(folder / DELETIONS) == []
        [held] = rows(folder / UPDATES)
        assert held == {
            "Email": "old@acme.example",
            "First Name": "Old",
            "Last Name": "Timer",
            "Employee Status": "inactive",
            "Department": "Sales",  # the profile as the hub has it
            GRACE_COLUMN: "2026-12-22",
        }
    assert (summary["deletions"], summary["updates"], summary["deactivations"]) == (0, 1, 1)
    assert summary["deletion_grace"] == {
        "days": 14,
        "held": 1,
        "held_until": [{"until": "2026-12-22", "members": 1}],
        "new": 1,
        "back": 0,
        "deleted_after_grace": 0,
    }
    assert grace.held == {member_key("old@acme.example"): "2026-12-08"}
    stored = (out / SUMMARY).read_text()
    assert json.loads(stored) == summary and "old@" not in stored and "Timer" not in stored
    words = grace_in_words(summary)
    assert "1 until 2026-12-22" in words and "old@" not in words and "Timer" not in words
    assert words in files_details("staff.csv", summary)  # the apply-files notice says it too


def test_a_hand_made_member_export_is_read_as_the_engine_reads_it(tmp_path):
    """A CSM's export without a hub API: semicolons, Windows-1252, a line break inside a value. The
    held member keeps the profile it has there (the grace stage once read only UTF-8 commas)."""
    export = "Email;First Name;Last Name;Status;Department\r\nann@acme.example;Ann;Lee;active;Engineering\r\n"
    export += 'old@acme.example;Zoë;"Timer\nSr.";active;Sales\r\n'
    (tmp_path / "members.csv").write_bytes(export.encode("cp1252"))
    out, members, summary = engine(tmp_path, ANN_ONLY, members=export)
    (tmp_path / "members.csv").write_bytes(export.encode("cp1252"))
    summary, _ = apply_grace(out, members, summary, {}, date(2026, 12, 8), 14)
    [held] = rows(out / HUB_API_DIR / UPDATES)
    assert (held["Email"], held["First Name"], held["Last Name"], held["Department"]) == (
        "old@acme.example",
        "Zoë",
        "Timer\nSr.",
        "Sales",
    )
    assert held["Employee Status"] == "inactive" and summary["deletions"] == 0


def test_a_held_member_still_missing_when_grace_ends_is_deleted(tmp_path):
    held = {member_key("old@acme.example"): "2026-12-08"}
    out, members, summary = engine(tmp_path, ANN_ONLY)
    still, grace = apply_grace(out, members, summary, held, date(2026, 12, 21), 14)
    assert still["deletions"] == 0 and grace.held == held  # a day before the end: still held

    out, members, summary = engine(tmp_path, ANN_ONLY)
    summary, grace = apply_grace(out, members, summary, held, date(2026, 12, 22), 14)
    assert [r["Email"] for r in rows(out / HUB_API_DIR / DELETIONS)] == ["old@acme.example"]
    assert rows(out / UPDATES) == [] and grace.held == {}
    assert summary["deletion_grace"]["deleted_after_grace"] == 1 and summary["deletions"] == 1


def test_a_member_back_from_grace_is_reactivated_with_their_profile_without_a_status_column(tmp_path):
    held = {member_key("old@acme.example"): "2026-12-08"}
    members = MEMBERS.replace("Timer,active", "Timer,deactivated")
    no_status = "Email,First Name,Last Name,Department\nann@acme.example,Ann,Lee,Engineering\nold@acme.example,Old,Timer,Sales\n"
    out, export, summary = engine(tmp_path, no_status, members)
    assert summary["reactivations"] == 0  # the engine changes no status without the column
    summary, grace = apply_grace(out, export, summary, held, date(2026, 12, 15), 14)
    [back] = rows(out / HUB_API_DIR / UPDATES)
    assert back == {
        "Email": "old@acme.example",
        "First Name": "Old",
        "Last Name": "Timer",
        "Employee Status": "active",
        "Department": "Sales",
        GRACE_COLUMN: "",  # the hub's note is cleared
    }
    assert summary["reactivations"] == 1 and summary["deletion_grace"]["back"] == 1 and grace.held == {}


def test_grace_zero_keeps_the_runbook_s_deletion(tmp_path):
    out, members, summary = engine(tmp_path, ANN_ONLY)
    before = {name: (out / name).read_bytes() for name in (UPDATES, DELETIONS)}
    summary, grace = apply_grace(out, members, summary, {}, date(2026, 12, 8), 0)
    assert {name: (out / name).read_bytes() for name in (UPDATES, DELETIONS)} == before
    assert summary["deletions"] == 1 and grace.held == {}


def test_the_stored_grace_record_and_older_registrations_read_with_today_s_code():
    """Stored data is an interface: the v1 record as written, and a registration stored before the field."""
    record = load_record((FIXTURES / "v1.json").read_bytes())
    assert record == DeletionGrace(
        upload="20261208T090000.000000Z-staff.csv",
        days=14,
        held={member_key("old@acme.example"): "2026-12-08"},
    )
    older = json.loads((FIXTURES / "registration-before-grace.json").read_text())
    assert Registration.model_validate(older).deletion_grace_days == 0


def test_weeks_of_uploads_hold_reactivate_then_delete_a_missing_member_in_the_hub(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack, hub_block, hub
):
    """Grace 14 days: missing on 12-08 -> deactivated and held until 12-22 (in the hub, not deleted);
    back on 12-15 -> active with their profile; missing again 12-22, still missing 01-05 -> deleted."""
    from flows.process_upload import process_upload
    from tasks.registry import update_registration
    from tests.gates import FlowInThread, answer
    from tests.test_sftp import registered

    customer, inbox = registered(tmp_path, sftp_server, hub, members=MEMBERS)
    (tmp_path / "map.csv").write_text(MAPPING)
    assert update_registration(customer.key, deletion_grace_days=14).deletion_grace_days == 14
    the_hub = hub.hub(customer.hub_url)
    the_hub.segments.append({"id": "seg_d", "name": "Department", "visibility": "public", "options": []})
    (inbox / "processing").mkdir()

    def week(day: str, text: str) -> dict:
        claim = f"{day}T090000.000000Z-staff.csv"
        (inbox / "processing" / claim).write_text(text)
        run = FlowInThread(
            process_upload, f"grace-{uuid.uuid4().hex[:8]}", customer_key=customer.key, upload=claim
        )
        answer(run.flow_run_id, "apply-files", decision="approve", approver="Casey")
        return run.result().result()

    def old() -> dict | None:
        return the_hub.members.get("old@acme.example")

    held = week("20261208", ANN_ONLY)
    assert (held["deletions"], held["deactivations"]) == (0, 1)
    assert old() is not None and old()["Status"] == "deactivated" and old()[GRACE_COLUMN] == "2026-12-22"
    export = hub_block.get_client(customer.hub_url).export_members(tmp_path / "export.csv")
    assert {r["Email"]: r[GRACE_COLUMN] for r in rows(export)} == {
        "ann@acme.example": "",
        "old@acme.example": "2026-12-22",
    }
    summary = [m["text"] for m in slack.messages("am-acme") if "files from" in m["text"]][-1]
    assert "1 until 2026-12-22" in summary and "old@" not in summary and "Timer" not in summary
    shared = [m for m in slack.messages("am-acme") if m.get("files")]
    updates = [
        slack.files[f["files"][0]["id"]]["content"] for f in shared if f["files"][0]["name"] == UPDATES
    ]
    assert b"old@acme.example" in updates[-1] and b"2026-12-22" in updates[-1]

    back = week("20261215", BOTH)
    assert back["reactivations"] == 1
    assert {k: old()[k] for k in ("Status", "First Name", "Department", GRACE_COLUMN)} == {
        "Status": "active",
        "First Name": "Old",
        "Department": "Sales",
        GRACE_COLUMN: "",
    }

    joiner = ANN_ONLY + "new@acme.example,New,Joiner,active,Sales\n"
    week("20261222", joiner)  # missing again: a new grace from today
    assert old()["Status"] == "deactivated" and old()[GRACE_COLUMN] == "2027-01-05"
    still = week("20261229", ANN_ONLY + "new@acme.example,New,Joiner,active,Engineering\n")
    assert still["deletions"] == 0 and old()["Status"] == "deactivated"
    # The file of 12-22 again: the same bytes as an applied upload, yet not a duplicate, as it ends a grace.
    gone = week("20270105", joiner)
    assert gone["deletions"] == 1 and old() is None
    assert set(the_hub.members) == {"ann@acme.example", "new@acme.example"}
