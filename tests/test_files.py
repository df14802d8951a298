"""The file engine on small hand-written files: each rule, checked on the actual emails and cells."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from tasks.files import MassDeletion, generate_files
from tasks.tabular import InputError

MAPPING = """Category,HRIS Field,HRIS Values,Notes,10KC Segment,10KC Value,Visibility
Org,Department,Engineering,,,,Public
,,Eng,,,Engineering,
,,Sales,,,,
Place,Location,LONDON,,Office,London,Private
,,Paris,,,,
"""
MEMBERS = """Email,First Name,Last Name,Status,Department,Office
ann@acme.com,Ann,Lee,active,Engineering,London
bob@acme.com,Bob,Stone,active,Sales,Paris
cy@acme.com,Cy,Young,deactivated,Sales,Paris
dee@acme.com,Dee,Dunn,active,Sales,Paris
gone@acme.com,Gone,Away,active,Sales,London
kept@acme.com,Kept,Rejected,active,Sales,London
"""
HEADER = "Email,First Name,Last Name,Employee Status,Department,Location\n"


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def run(tmp_path: Path, hris: str, members: str = MEMBERS, mapping: str = MAPPING, **options):
    out = tmp_path / "out"
    result = generate_files(
        write(tmp_path, "hris.csv", hris), write(tmp_path, "members.csv", members), write(tmp_path, "map.csv", mapping),
        out, **options,
    )  # fmt: skip
    return result.summary, out


def emails(path: Path) -> list[str]:
    return [r["Email"] for r in rows(path)]


def test_invites_are_active_valid_people_not_yet_in_the_hub(tmp_path):
    summary, out = run(
        tmp_path,
        HEADER
        + "zed@acme.com,Zed,Zulu,active,Eng,London\n"
        + "amy@acme.com,Amy,Adams,,Sales,Paris\n"
        + "ian@acme.com,Ian,Inactive,inactive,Sales,Paris\n"  # inactive and not a member: nothing
        + "ann@acme.com,Ann,Lee,active,Engineering,London\n",
    )
    assert rows(out / "potential invites.csv") == [
        {"Email": "amy@acme.com", "First Name": "Amy", "Last Name": "Adams", "Department": "Sales", "Office": "Paris"},
        {"Email": "zed@acme.com", "First Name": "Zed", "Last Name": "Zulu", "Department": "Engineering", "Office": "London"},
    ]  # fmt: skip
    assert summary["invites"] == 2
    assert "ian@acme.com" not in (out / "rejected rows.csv").read_text()


def test_updates_cover_names_status_and_mapped_segments(tmp_path):
    summary, out = run(
        tmp_path,
        HEADER
        + "ann@acme.com,Ann,Lee-Smith,active,Engineering,london\n"  # name change; LONDON matched any case
        + "BOB@acme.com ,Bob,Stone,inactive,Sales,Paris\n"  # deactivation; key trimmed, case-insensitive
        + "cy@acme.com,Cy,Young,active,Sales,Paris\n"  # reactivation
        + "dee@acme.com,Dee,Dunn,active,Eng,London\n"  # Eng -> Engineering, Paris -> London
        + "kept@acme.com,Kept,Rejected,active,Sales,London\n",  # unchanged: not an update
    )
    assert rows(out / "profile updates.csv") == [
        {"Email": "ann@acme.com", "First Name": "Ann", "Last Name": "Lee-Smith", "Employee Status": "active", "Department": "Engineering", "Office": "London"},
        {"Email": "bob@acme.com", "First Name": "Bob", "Last Name": "Stone", "Employee Status": "inactive", "Department": "Sales", "Office": "Paris"},
        {"Email": "cy@acme.com", "First Name": "Cy", "Last Name": "Young", "Employee Status": "active", "Department": "Sales", "Office": "Paris"},
        {"Email": "dee@acme.com", "First Name": "Dee", "Last Name": "Dunn", "Employee Status": "active", "Department": "Engineering", "Office": "London"},
    ]  # fmt: skip
    assert (summary["updates"], summary["deactivations"], summary["reactivations"]) == (4, 1, 1)


def test_without_a_status_column_nobody_is_deactivated_or_reactivated(tmp_path):
    summary, out = run(
        tmp_path,
        "Email,First Name,Last Name,Department,Location\n"
        + "ann@acme.com,Ann,Lee,Engineering,London\n"
        + "bob@acme.com,Bob,Stone,Sales,Paris\n"
        + "cy@acme.com,Cy,Young,Sales,Paris\n"  # deactivated in the hub: stays so, no update at all
        + "dee@acme.com,Dee,Dunn-Day,Sales,Paris\n"
        + "kept@acme.com,Kept,Rejected,Sales,London\n",
        members=MEMBERS.replace("dee@acme.com,Dee,Dunn,active", "dee@acme.com,Dee,Dunn,deactivated"),
    )
    # a name change of a deactivated member keeps the hub's status in the file the CSM applies
    assert rows(out / "profile updates.csv") == [
        {"Email": "dee@acme.com", "First Name": "Dee", "Last Name": "Dunn-Day", "Employee Status": "inactive", "Department": "Sales", "Office": "Paris"},
    ]  # fmt: skip
    assert (summary["updates"], summary["deactivations"], summary["reactivations"]) == (1, 0, 0)
    written = json.loads((out / "summary.json").read_text())
    assert written["status_column"] is False
    assert written["notes"] == ["no status column: status unchanged"]


def test_with_a_status_column_the_summary_says_so(tmp_path):
    summary, _ = run(tmp_path, HEADER + "cy@acme.com,Cy,Young,active,Sales,Paris\n")
    assert summary["status_column"] is True and summary["notes"] == []
    assert summary["reactivations"] == 1


def test_the_slack_summary_says_when_status_is_unchanged():
    from tasks.templating import render

    counts = dict.fromkeys(
        ["invites", "updates", "deletions", "deactivations", "reactivations", "rejected_rows"], 0
    )
    context = {"company": "Acme", "upload": "employees.csv", "mode": "production", "unmapped": 0, **counts}
    without = render("slack/files_shared.md.j2", **context, status_column=False)
    assert "no status column: status unchanged" in without
    assert "no status column" not in render("slack/files_shared.md.j2", **context, status_column=True)
    assert "no status column" not in render("slack/files_shared.md.j2", **context)  # older callers


def test_unknown_and_blank_values_change_nothing_and_unknowns_are_reported(tmp_path):
    summary, out = run(
        tmp_path,
        HEADER
        + "ann@acme.com,Ann,Lee,active,Engineering,Lisbon\n"
        + "bob@acme.com,,,active,,Lisbon\n"
        + "dee@acme.com,Dee,Dunn,active,Marketing,\n",
    )
    assert rows(out / "profile updates.csv") == []
    assert summary["unmapped_values"] == [
        {"field": "Department", "value": "Marketing", "rows": 1},
        {"field": "Location", "value": "Lisbon", "rows": 2},
    ]


def test_deletions_are_members_nowhere_in_the_upload_even_on_rejected_rows(tmp_path):
    summary, out = run(
        tmp_path,
        HEADER
        + "ann@acme.com,Ann,Lee,active,Engineering,London\n"
        + "bob@acme.com,Bob,Stone,active,Sales,Paris\n"
        + "cy@acme.com,Cy,Young,inactive,Sales,Paris\n"
        + "dee@acme.com,Dee,Dunn,active,Sales,Paris\n"
        + "KEPT@acme.com,Kept,Rejected,on leave,Sales,London\n",  # rejected, yet still in the file
    )
    assert rows(out / "profile deletions.csv") == [
        {"Email": "gone@acme.com", "First Name": "Gone", "Last Name": "Away"}
    ]
    assert emails(out / "rejected rows.csv") == ["KEPT@acme.com"]
    assert summary["deletions"] == 1


def test_unusual_valid_emails_are_kept_and_a_rejected_row_protects_its_person(tmp_path):
    """Issue 20: o'brien@acme.com was rejected and deleted every week; now no rejection reason deletes."""
    members = MEMBERS + (
        "o'brien@acme.com,Pat,O'Brien,active,Sales,Paris\n"
        "jörg@xn--bcher-kva.de,Jörg,Bauer,active,Sales,Paris\n"
        "typo@acme.com,Ty,Po,active,Sales,Paris\n"
        "blank@acme.com,Bl,Ank,active,Sales,Paris\n"
    )
    summary, out = run(
        tmp_path,
        HEADER
        + "ann@acme.com,Ann,Lee,active,Engineering,London\n"
        + "bob@acme.com,Bob,Stone,active,Sales,Paris\n"
        + "cy@acme.com,Cy,Young,inactive,Sales,Paris\n"
        + "dee@acme.com,Dee,Dunn,active,Sales,Paris\n"
        + "kept@acme.com,Kept,Rejected,on leave,Sales,London\n"
        + "O'Brien@acme.com,Pat,O'Brien,active,Sales,Paris\n"
        + "Jörg@Bücher.de,Jörg,Bauer,active,Sales,Paris\n"
        + "zoë.o'neil+hr@bücher.de,Zoë,O'Neil,active,Sales,Paris\n"
        + "typo@acme,Ty,Po,active,Sales,Paris\n"  # invalid: kept by its name
        + ",Bl,Ank,active,Sales,Paris\n",  # no email: kept by its name
        members=members,
    )
    assert emails(out / "profile deletions.csv") == ["gone@acme.com"]
    assert emails(out / "potential invites.csv") == ["zoë.o'neil+hr@bücher.de"]
    assert [(r["Email"], r["Reason"]) for r in rows(out / "rejected rows.csv")] == [
        ("kept@acme.com", "status 'on leave' is not active or inactive"),
        ("typo@acme", "invalid email"),
        ("", "missing email"),
    ]
    assert summary["deletions"] == 1 and summary["updates"] == 0  # o'brien and jörg matched, unchanged


def test_rejected_rows_carry_line_numbers_and_reasons(tmp_path):
    summary, out = run(
        tmp_path,
        HEADER
        + "ann@acme.com,Ann,Lee,active,Engineering,London\n"  # line 2
        + 'new@acme.com,"Multi\nLine",Name,active,Sales,Paris\n'  # lines 3-4
        + ",No,Email,active,Sales,Paris\n"  # line 5
        + "not-an-email,Bad,Email,active,Sales,Paris\n"  # line 6
        + "twice@acme.com,T,One,active,Sales,Paris\n"  # line 7
        + "\n"  # line 8: blank
        + " TWICE@acme.com,T,Two,active,Sales,Paris\n"  # line 9
        + "odd@acme.com,O,Dd,Terminated,Sales,Paris\n",  # line 10
    )
    assert rows(out / "rejected rows.csv") == [
        {"Line": "5", "Email": "", "Reason": "missing email"},
        {"Line": "6", "Email": "not-an-email", "Reason": "invalid email"},
        {"Line": "7", "Email": "twice@acme.com", "Reason": "email appears more than once in the file"},
        {"Line": "9", "Email": "TWICE@acme.com", "Reason": "email appears more than once in the file"},
        {"Line": "10", "Email": "odd@acme.com", "Reason": "status 'terminated' is not active or inactive"},
    ]
    assert emails(out / "potential invites.csv") == ["new@acme.com"]
    assert rows(out / "potential invites.csv")[0]["First Name"] == "Multi\nLine"
    assert summary["rejected_rows"] == 5


@pytest.mark.parametrize(
    ("delimiter", "encoding", "newline", "bom"),
    [
        (",", "utf-8", "\n", False),
        (";", "utf-8", "\r\n", True),
        ("\t", "cp1252", "\r\n", False),
        ("|", "utf-8", "\n", False),
    ],
)
def test_any_common_csv_dialect_gives_the_same_files(tmp_path, delimiter, encoding, newline, bom):
    records = [
        ["  E-MAIL ", "first name", "LAST NAME", "Status", "department", "Location", "Ignored"],
        ["zoë@acme.com", "Zoë", "Müller; \"Jr\"", "active", "Sales", "Paris", "x"],
        ["ann@acme.com", "Ann", "Lee", "active", "Engineering", "London", "y"],
    ]  # fmt: skip
    text = "".join(
        delimiter.join(
            '"' + c.replace('"', '""') + '"' if any(ch in c for ch in delimiter + '";') else c for c in r
        )
        + newline
        for r in records
    )
    hris = tmp_path / "hris.csv"
    hris.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    out = tmp_path / "out"
    generate_files(hris, write(tmp_path, "m.csv", MEMBERS), write(tmp_path, "p.csv", MAPPING), out)
    assert rows(out / "potential invites.csv") == [
        {"Email": "zoë@acme.com", "First Name": "Zoë", "Last Name": 'Müller; "Jr"', "Department": "Sales", "Office": "Paris"}
    ]  # fmt: skip


def test_mapping_from_xlsx_with_columns_found_by_name(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Data mapping for Acme"])  # a title row above the header
    sheet.append(["Visibility", "HRIS Values", "HRIS Field", "10KC Value", "10KC Segment"])
    sheet.append(["Public", "Eng", "Department", "Engineering", "Team"])
    sheet.append([None, "Sales", None, None, None])
    book.save(tmp_path / "map.xlsx")
    out = tmp_path / "out"
    summary = generate_files(
        write(tmp_path, "h.csv", "Email,Department\nnew@acme.com,eng\nnew2@acme.com,Sales\n"),
        write(tmp_path, "m.csv", "Email,First Name,Last Name,Status,Team\n"),
        tmp_path / "map.xlsx",
        out,
    ).summary
    assert rows(out / "potential invites.csv") == [
        {"Email": "new2@acme.com", "First Name": "", "Last Name": "", "Team": "Sales"},
        {"Email": "new@acme.com", "First Name": "", "Last Name": "", "Team": "Engineering"},
    ]
    assert summary["invites"] == 2


def test_formula_cells_are_neutralised_and_rows_sorted(tmp_path):
    _, out = run(
        tmp_path,
        HEADER + "zz@acme.com,=HYPERLINK(1),+1,active,Sales,Paris\naa@acme.com,@SUM,-2,active,Sales,Paris\n",
    )
    assert rows(out / "potential invites.csv") == [
        {"Email": "aa@acme.com", "First Name": "'@SUM", "Last Name": "'-2", "Department": "Sales", "Office": "Paris"},
        {"Email": "zz@acme.com", "First Name": "'=HYPERLINK(1)", "Last Name": "'+1", "Department": "Sales", "Office": "Paris"},
    ]  # fmt: skip


def test_summary_json_has_every_count(tmp_path):
    summary, out = run(tmp_path, HEADER + "new@acme.com,N,P,active,Sales,Paris\n")
    written = json.loads((out / "summary.json").read_text())
    assert written == summary
    assert {k: written[k] for k in ("invites", "updates", "deletions", "deactivations", "reactivations", "rejected_rows")} == {
        "invites": 1, "updates": 0, "deletions": 6, "deactivations": 0, "reactivations": 0, "rejected_rows": 0,
    }  # fmt: skip
    assert written["deletion_guard"]["tripped"] is False  # 6 deletions: under the 10-row floor


def _many_members(count: int) -> str:
    return "Email,First Name,Last Name,Status\n" + "".join(
        f"m{i}@acme.com,M,{i},active\n" for i in range(count)
    )


def test_mass_deletion_guard_trips_writes_files_and_can_be_overridden(tmp_path):
    hris = "Email\n" + "".join(f"m{i}@acme.com\n" for i in range(70))  # 30 of 100 would go
    with pytest.raises(MassDeletion, match="30 of 100 members"):
        run(tmp_path, hris, members=_many_members(100))
    out = tmp_path / "out"
    assert len(rows(out / "profile deletions.csv")) == 30
    assert json.loads((out / "summary.json").read_text())["deletion_guard"]["tripped"] is True

    summary, _ = run(tmp_path, hris, members=_many_members(100), allow_mass_deletion=True)
    assert summary["deletion_guard"] == {
        "tripped": True, "allowed": True, "max_deletion_pct": 20, "deletions": 30, "members": 100, "deletion_pct": 30.0,
    }  # fmt: skip
    summary, _ = run(tmp_path, hris, members=_many_members(100), max_deletion_pct=35)
    assert summary["deletion_guard"]["tripped"] is False


def test_a_header_only_upload_trips_the_guard(tmp_path):
    with pytest.raises(MassDeletion):
        run(tmp_path, "Email,First Name\n", members=_many_members(50))


# --- the CLI: exit codes, one-line errors, nothing half-written ----------------------------------

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "generate-files", *args], cwd=ROOT, capture_output=True, text=True
    )


def cli_args(tmp_path, hris: Path, members: Path | None = None, mapping: Path | None = None) -> list[str]:
    members = members or write(tmp_path, "members.csv", MEMBERS)
    mapping = mapping or write(tmp_path, "map.csv", MAPPING)
    return ["--hris-csv", str(hris), "--members-csv", str(members), "--mapping", str(mapping), "--out", str(tmp_path / "out")]  # fmt: skip


def test_cli_writes_the_files_and_exits_0(tmp_path):
    done = cli(
        *cli_args(tmp_path, write(tmp_path, "h.csv", HEADER + "new@acme.com,N,P,active,Sales,Paris\n"))
    )
    assert done.returncode == 0, done.stderr
    assert "1 invites" in done.stdout and "6 deletions" in done.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [
            "potential invites.csv",
            "profile updates.csv",
            "profile deletions.csv",
            "rejected rows.csv",
            "summary.json",
        ]
    )
    assert "new@acme.com" not in done.stdout + done.stderr  # counts, never member emails


def test_cli_says_when_status_is_unchanged(tmp_path):
    done = cli(
        *cli_args(tmp_path, write(tmp_path, "h.csv", "Email\nann@acme.com\n")), "--allow-mass-deletion"
    )
    assert done.returncode == 0, done.stderr
    assert "no status column: status unchanged" in done.stdout


def test_cli_exits_3_when_the_guard_trips_and_0_when_allowed(tmp_path):
    hris = write(tmp_path, "h.csv", "Email\n")
    members = write(tmp_path, "members.csv", _many_members(40))
    tripped = cli(*cli_args(tmp_path, hris, members))
    assert tripped.returncode == 3
    assert tripped.stderr.count("\n") == 1 and "--allow-mass-deletion" in tripped.stderr
    assert len(rows(tmp_path / "out" / "profile deletions.csv")) == 40
    assert cli(*cli_args(tmp_path, hris, members), "--allow-mass-deletion").returncode == 0


def _xlsx_bytes(tmp_path) -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["Email"])
    book.save(tmp_path / "real.xlsx")
    return (tmp_path / "real.xlsx").read_bytes()


BAD_HRIS = {
    "missing": (None, "HRIS upload (hris.csv): file not found"),
    "empty": (b"", "HRIS upload (hris.csv): the file is empty"),
    "blank": (b"  \n\n", "HRIS upload (hris.csv): the file is empty"),
    "binary": (b"\x01\x02\x00\x03garbage", "not a text CSV file"),
    "gzip": ("gzip", "HRIS upload (hris.csv): this is a gzip archive, not a text CSV file"),
    "spreadsheet": ("xlsx", "this is a zip archive or an .xlsx spreadsheet, not a text CSV file"),
    "no email column": (b"Name,Dept\nAnn,Sales\n", "HRIS upload (hris.csv): no email column"),
    "ragged row": (
        b"Email,Name\na@acme.com,Ann\nb@acme.com,Bob,extra\n",
        "line 3 has 3 fields where the header has 2",
    ),
}


@pytest.mark.parametrize("case", list(BAD_HRIS))
def test_bad_hris_upload_exits_2_with_one_line_and_writes_nothing(tmp_path, case):
    content, expected = BAD_HRIS[case]
    hris = tmp_path / "hris.csv"
    if content == "gzip":
        hris.write_bytes(gzip.compress(b"Email\na@acme.com\n"))
    elif content == "xlsx":
        hris.write_bytes(_xlsx_bytes(tmp_path))
    elif content is not None:
        hris.write_bytes(content)
    done = cli(*cli_args(tmp_path, hris))
    assert done.returncode == 2
    assert expected in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "b@acme.com" not in done.stderr  # the offending row is named by line, never quoted
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("members", "mapping", "expected"),
    [
        ("First Name,Last Name\nAnn,Lee\n", MAPPING, "member export (members.csv): no Email column"),
        (MEMBERS, "Only one column\nx\n", "mapping table (map.csv): no 'HRIS Field' (column B)"),
        (MEMBERS, "", "mapping table (map.csv): the file is empty"),
    ],
)
def test_bad_member_export_or_mapping_exits_2(tmp_path, members, mapping, expected):
    hris = write(tmp_path, "hris.csv", HEADER + "new@acme.com,N,P,active,Sales,Paris\n")
    done = cli(
        *cli_args(
            tmp_path, hris, write(tmp_path, "members.csv", members), write(tmp_path, "map.csv", mapping)
        )
    )
    assert done.returncode == 2
    assert expected in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_bad_input_leaves_earlier_outputs_untouched(tmp_path):
    good = write(tmp_path, "h.csv", HEADER + "new@acme.com,N,P,active,Sales,Paris\n")
    assert cli(*cli_args(tmp_path, good)).returncode == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    assert cli(*cli_args(tmp_path, write(tmp_path, "bad.csv", "Name\nAnn\n"))).returncode == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before


def test_input_error_names_the_file():
    error = InputError("HRIS upload", "/x/y/acme.csv", "the file is empty")
    assert str(error) == "HRIS upload (acme.csv): the file is empty"


def test_the_task_hands_a_tripped_guard_back_to_the_flow(prefect_api, tmp_path):
    from tasks.files import generate_files_task

    hris = write(tmp_path, "h.csv", "Email\nm0@acme.com\n")
    members = write(tmp_path, "members.csv", _many_members(30))
    summary = generate_files_task(hris, members, write(tmp_path, "map.csv", MAPPING), tmp_path / "out")
    assert summary["deletion_guard"]["tripped"] is True and summary["deletions"] == 29
    assert len(rows(tmp_path / "out" / "profile deletions.csv")) == 29


def test_a_renamed_mapped_column_is_named_with_its_likely_new_name(tmp_path):
    """Issue 20: `Department` became `Dept`; summary.json listed it as missing and nobody heard."""
    from tasks.column_match import column_problems

    header = "Email,First Name,Last Name,Employee Status,Dept,Location,Badge\n"
    summary, _ = run(
        tmp_path,
        header
        + "ann@acme.com,Ann,Lee,active,Eng,LONDON,7\n"
        + "bob@acme.com,Bob,Stone,active,Sales,Paris,8\n"
        + "dee@acme.com,Dee,Dunn,active,sales,Paris,9\n"
        + "new@acme.com,New,Hire,active,Marketing,Paris,10\n",
    )
    assert summary["missing_columns"] == ["Department"]
    assert summary["renamed_columns"] == [
        {"field": "Department", "column": "Dept", "matching": 2, "values": 3}
    ]
    assert column_problems(summary) == [
        "`Dept` looks like `Department` (2 of 3 values match): ask the customer or update the mapping table"
    ]


def test_a_missing_mapped_column_without_a_look_alike_is_still_said(tmp_path):
    from tasks.column_match import column_problems

    summary, _ = run(tmp_path, "Email,First Name,Last Name,Location,Badge\nann@acme.com,Ann,Lee,LONDON,7\n")
    assert summary["renamed_columns"] == []
    assert column_problems(summary) == [
        "the mapped column `Department` is not in the upload, so its segment is not updated: ask the "
        "customer or update the mapping table"
    ]


def test_the_slack_summary_names_the_unmapped_values_with_their_counts_and_caps_the_list():
    from tasks.registry import Registration
    from tasks.uploads import summary_text
    from tests.conftest import make_customer

    unmapped = [
        {"field": "Department", "value": "Sales <Ops>", "rows": 41},
        {"field": "Location", "value": "Lisbon", "rows": 2},
    ]
    unmapped += [{"field": "Location", "value": f"Site {i}", "rows": 1} for i in range(11)]
    counts = dict.fromkeys(
        ["invites", "updates", "deletions", "deactivations", "reactivations", "rejected_rows"], 0
    )
    summary = {**counts, "unmapped_values": unmapped, "missing_columns": []}
    registration = Registration(customer=make_customer(), mode="production", mapping_link="map.csv")
    text = summary_text(registration, "employees.csv", summary)
    assert "• unmapped values: 13 (not in the mapping table: add them there)\n" in text
    assert "    ◦ Department: Sales &lt;Ops&gt; ×41\n    ◦ Location: Lisbon ×2\n" in text  # escaped for Slack
    assert "    ◦ Location: Site 7 ×1\n    ◦ and 3 more" in text and "Site 8" not in text
