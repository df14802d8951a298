"""Issue 23 §3: what a new mapping table would change on the last applied upload, computed with the
file engine on the files kept for it: exact counts on a small known upload, and the purged case."""

from __future__ import annotations

import shutil
from pathlib import Path

from tasks.files import generate_files
from tasks.mapping import parse_rows
from tasks.mapping_whatif import keep_inputs, kept_inputs, what_if

HEADER = ["Category", "HRIS Field", "HRIS Values", "Notes", "10KC Segment", "10KC Value", "Visibility"]
OLD = [
    HEADER,
    ["Org", "Department", "Engineering", "", "", "", "Public"],
    ["", "", "Sales", "", "", "", ""],
    ["Place", "Work Location", "LDN", "", "Office", "London", "Private"],
    ["", "", "PAR", "", "", "Paris", ""],
]
# Marketing newly mapped, Sales no longer mapped, PAR now means Paris HQ
NEW = [
    HEADER,
    ["Org", "Department", "Engineering", "", "", "", "Public"],
    ["", "", "Marketing", "", "", "", ""],
    ["Place", "Work Location", "LDN", "", "Office", "London", "Private"],
    ["", "", "PAR", "", "", "Paris HQ", ""],
]
HRIS = (
    "Email,First Name,Last Name,Employee Status,Department,Work Location\n"
    "a@x.example,Ann,Lee,active,Engineering,LDN\n"  # the same both ways
    "b@x.example,Bo,Kim,active,Marketing,PAR\n"  # old: nothing mapped differs; new: both fields
    "c@x.example,Cy,Ng,active,Sales,PAR\n"  # old: Sales, Paris; new: keeps Engineering, Paris HQ
    "d@x.example,Di,Ito,active,Engineering,LDN\n"  # not a member: an invite both ways
    "f@x.example,Fe,Oh,active,Sales,LDN\n"  # Sales unmapped under the new table: kept as it is
)
MEMBERS = (
    "Email,First Name,Last Name,Status,Department,Office\n"
    "a@x.example,Ann,Lee,active,Engineering,London\n"
    "b@x.example,Bo,Kim,active,Sales,Paris\n"
    "c@x.example,Cy,Ng,active,Engineering,London\n"
    "e@x.example,Ed,Fox,active,Sales,London\n"  # gone from the HRIS: a deletion both ways
    "f@x.example,Fe,Oh,active,Sales,London\n"
)


def applied_upload(tmp_path: Path) -> Path:
    """A files folder as process-upload leaves it: the files made with the old table, and the inputs."""
    hris, members = tmp_path / "staff.csv", tmp_path / "members.csv"
    hris.write_text(HRIS)
    members.write_text(MEMBERS)
    kept = tmp_path / "acme.com" / "20261201T000000Z-staff"
    generate_files(hris, members, parse_rows(OLD, "old"), kept, hub_copies=True)
    keep_inputs(kept, hris, members)
    return kept


def test_what_if_counts_per_field_and_per_file(tmp_path):
    kept = applied_upload(tmp_path)
    found = what_if("staff.csv", kept, parse_rows(NEW, "new"), tmp_path / "scratch")
    assert not found.unavailable
    by_field = {f.name: (f.members_changed, f.newly_mapped, f.newly_unmapped) for f in found.fields}
    assert by_field == {
        "Department": (2, ["Marketing"], ["Sales"]),  # b gets Marketing; c keeps Engineering, not Sales
        "Office": (2, [], []),  # b and c: Paris HQ instead of Paris
    }
    assert (found.old["invites"], found.old["updates"], found.old["deletions"]) == (1, 1, 1)
    assert (found.new["invites"], found.new["updates"], found.new["deletions"]) == (1, 2, 1)
    markdown = found.markdown()
    assert "| Department | 2 | 1: `Marketing` | 1: `Sales` |" in markdown
    assert "| Office | 2 | 0 | 0 |" in markdown
    assert "| profile updates | 1 | 2 |" in markdown
    for private in ("x.example", "Ann", "Kim", "Fox"):  # counts and mapping values only
        assert private not in markdown and private not in " ".join(found.slack_lines())


def test_the_same_table_changes_nothing(tmp_path):
    kept = applied_upload(tmp_path)
    found = what_if("staff.csv", kept, parse_rows(OLD, "old"), tmp_path / "scratch")
    assert [(f.name, f.members_changed, f.newly_mapped, f.newly_unmapped) for f in found.fields] == [
        ("Department", 0, [], []),
        ("Office", 0, [], []),
    ]
    assert found.old == found.new


def test_purged_files_are_said_plainly(tmp_path):
    kept = applied_upload(tmp_path)
    shutil.rmtree(kept)  # purge-old-files, after the retention
    found = what_if("staff.csv", kept, parse_rows(NEW, "new"), tmp_path / "scratch")
    assert found.markdown() == (
        "**What-if on the last applied upload** `staff.csv`: its files were deleted by purge-old-files "
        "after the retention period, so no what-if can be computed; the next upload uses the new table\n"
    )
    assert not (tmp_path / "scratch").exists()


def test_files_made_before_inputs_were_kept_are_said_plainly(tmp_path):
    kept = applied_upload(tmp_path)
    kept_inputs(kept)[0].unlink()
    found = what_if("staff.csv", kept, parse_rows(NEW, "new"), tmp_path / "scratch")
    assert "processed before uploads' inputs were kept" in found.unavailable


def test_an_upload_applied_with_deletion_grace_is_compared_without_grace_s_column_and_says_so(tmp_path):
    """Grace held e@ as an update with its own column: the what-if counts no field change for it and
    says plainly that the applied counts include grace."""
    import json
    from datetime import date

    from tasks.deletion_grace import apply_grace
    from tasks.files import SUMMARY

    kept = applied_upload(tmp_path)
    summary = json.loads((kept / SUMMARY).read_text())
    apply_grace(kept, kept_inputs(kept)[1], summary, {}, date(2026, 12, 1), 14)  # e@ held, not deleted
    found = what_if("staff.csv", kept, parse_rows(OLD, "old"), tmp_path / "scratch")
    assert {f.name for f in found.fields} == {"Department", "Office"}  # no "Deletion Grace Until" row
    assert (found.old["deletions"], found.new["deletions"]) == (0, 1)
    assert "include deletion grace (1 member(s) held deactivated, 0 back)" in found.markdown()
    assert found.grace in found.slack_lines()
