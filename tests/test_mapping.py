"""The data mapping table: read from Google Sheets (gspread against the stand-in) and validated."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from blocks.google_sheets import GoogleSheetsCredentials
from sandbox.http import Response
from tasks.mapping import (
    MappingLink,
    SheetsError,
    parse_mapping_link,
    parse_rows,
    read_mapping,
    read_mapping_sheet,
    spreadsheet_key,
    validate_mapping,
)
from tasks.segments import desired_segments, plan_segments
from tests.conftest import delete_block

HEADER = ["Category", "HRIS Field", "HRIS Values", "Notes", "10KC Segment", "10KC Value", "Visibility"]
REALISTIC = [
    ["Acme data mapping table"],
    [],
    HEADER,
    ["Organisation", "Department", "Engineering", "", "", "", "Public"],
    ["", "", "Eng", "legacy code", "", "Engineering", ""],  # merged B: continues Department
    ["", "", "Sales", "", "", "", ""],
    ["Location", "Work Location", "LDN", "", "Office", "London", "Private"],
    ["", "", "PAR", "", "", "Paris", ""],
    ["", "", "Remote", "", "", "", ""],
]
KEY = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
LINK = f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid=0"


def test_a_realistic_sheet_reads_with_continuation_rows(sheets, sheets_credentials):
    sheets.add_spreadsheet(
        KEY, {"Instructions": [["read me"]], "Data Mapping": REALISTIC}, [sheets_credentials.client_email]
    )
    table = read_mapping_sheet(sheets_credentials, LINK)

    assert [(f.hris_field, f.segment, f.visibility, f.category) for f in table.fields] == [
        ("Department", "Department", "Public", "Organisation"),
        ("Work Location", "Office", "Private", "Location"),
    ]
    assert [(v.hris_value, v.tenkc_value, v.row) for v in table.fields[0].values] == [
        ("Engineering", "Engineering", 4), ("Eng", "Engineering", 5), ("Sales", "Sales", 6),
    ]  # fmt: skip
    assert table.translation(table.fields[1]) == {"ldn": "London", "par": "Paris", "remote": "Remote"}
    assert table.segments() == ["Department", "Office"]
    assert validate_mapping(table).findings == []
    assert "'Data Mapping'" in table.source


@pytest.mark.parametrize(
    "extra",
    [
        [["", "", "filler", "", "", "", ""]] * 10_000,  # 10,000 rows past the header: over the row cap
        [[""] * 50 + ["a note in column AY"]],  # a 51st column
    ],
    ids=["rows", "columns"],
)
def test_a_sheet_past_the_xlsx_caps_is_refused_in_one_line_and_only_the_caps_are_fetched(
    sheets, sheets_credentials, extra
):
    """Issue 20: the xlsx path refused tables over 10,000 rows or 50 columns; a sheet had no cap."""
    from urllib.parse import unquote

    sheets.add_spreadsheet(KEY, {"Data Mapping": REALISTIC + extra}, [sheets_credentials.client_email])
    with pytest.raises(SheetsError) as refused:
        read_mapping_sheet(sheets_credentials, LINK)
    assert str(refused.value) == (
        "Google Sheet 'Data mapping' / 'Data Mapping': the sheet is larger than a mapping table; a mapping "
        "table has at most 10,000 rows and 50 columns; delete what is below and right of the table (or copy "
        "the table into a new workbook) and send it again"
    )
    [fetched] = [r for r in sheets.received if "/values/" in r.path]
    assert unquote(fetched.path).endswith("!A1:AY10001")


def test_a_sheet_not_shared_with_the_service_account_says_whom_to_share_with(sheets, sheets_credentials):
    sheets.add_spreadsheet(KEY, {"Sheet1": REALISTIC}, shared_with=["someone-else@example.com"])
    with pytest.raises(SheetsError, match=f"not shared with {sheets_credentials.client_email}"):
        read_mapping_sheet(sheets_credentials, LINK)


def test_an_unknown_sheet_is_a_clear_error(sheets, sheets_credentials):
    with pytest.raises(SheetsError, match=f"no Google Sheet with key {KEY}"):
        read_mapping_sheet(sheets_credentials, KEY)


@pytest.mark.slow
def test_a_429_is_retried_then_succeeds(sheets, sheets_credentials):
    sheets.add_spreadsheet(KEY, {"Sheet1": REALISTIC}, [sheets_credentials.client_email])
    sheets.fail_next(
        "/values/",
        Response(
            429,
            {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}},
            headers={"Retry-After": "1"},
        ),
    )
    table = read_mapping_sheet(sheets_credentials, LINK)
    assert len(table.fields) == 2
    assert len(sheets.calls("/values/")) == 2


def test_persistent_rate_limiting_gives_up_with_a_clear_message(sheets, sheets_credentials):
    sheets.add_spreadsheet(KEY, {"Sheet1": REALISTIC}, [sheets_credentials.client_email])
    for _ in range(3):
        sheets.fail_next(
            "/v4/spreadsheets/",
            Response(
                429,
                {"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}},
                headers={"Retry-After": "0"},
            ),
        )
    with pytest.raises(SheetsError, match="rate-limiting"):
        read_mapping_sheet(sheets_credentials, LINK)


def test_links_and_keys_are_understood():
    assert spreadsheet_key(LINK) == KEY
    assert spreadsheet_key(f"  {KEY} ") == KEY
    with pytest.raises(SheetsError, match="not a Google Sheets link"):
        spreadsheet_key("https://example.com/not-a-sheet")


@pytest.mark.parametrize(
    "link", [f"  {LINK}", KEY, f" {KEY}\n"], ids=["leading-space", "bare-key", "padded-key"]
)
def test_a_link_the_check_accepts_is_the_table_every_upload_reads(sheets, sheets_block, tmp_path, link):
    """Issue 20: the check took ' https://…' and a bare key, process-upload's load_mapping read them as
    worker paths ('file not found') and refused every later upload."""
    from tasks.uploads import load_mapping

    sheets.add_spreadsheet(KEY, {"Data Mapping": REALISTIC}, [sheets_block.client_email])
    checked = read_mapping(link, sheets_block)  # what the mapping-table form's check reads
    assert parse_mapping_link(link) == MappingLink(link.strip(), KEY)  # what is registered
    assert load_mapping(link).fields == checked.fields and checked.fields
    (tmp_path / "map.csv").write_text("HRIS Field,HRIS Values,Visibility\nDepartment,Sales,Public\n")
    assert [f.hris_field for f in load_mapping(f" {tmp_path / 'map.csv'} ").fields] == ["Department"]
    with pytest.raises(SheetsError, match="not a Google Sheets link"):
        read_mapping(str(tmp_path / "map.csv"), sheets_block)  # a form asking for a sheet reads no file


def test_the_credentials_block_refuses_a_key_that_is_not_a_service_account():
    with pytest.raises(ValueError, match="JSON key"):
        GoogleSheetsCredentials(service_account_info="not json")
    with pytest.raises(ValueError, match="missing: private_key"):
        GoogleSheetsCredentials(
            service_account_info=json.dumps(
                {"type": "service_account", "client_email": "a@b", "token_uri": "x"}
            )
        )


def _messages(rows) -> tuple[list[str], list[str]]:
    report = validate_mapping(parse_rows([HEADER, *rows], "test"))
    return [f.message for f in report.errors], [f.message for f in report.warnings]


@pytest.mark.parametrize(
    ("rows", "expected_error"),
    [
        (
            [["Org", "Department", "", "", "", "", "Public"]],
            "Row 2: the field 'Department' has no values in column C.",
        ),
        (
            [["", "", "Sales", "", "", "", ""]],
            "Row 2: the value 'Sales' has no HRIS field above it in column B.",
        ),
        (
            [["Org", "Department", "Sales", "", "", "", ""]],
            "Row 2: the field 'Department' needs Public or Private in column G.",
        ),
        (
            [["Org", "Department", "Sales", "", "", "", "Secret"]],
            "Row 2: the field 'Department' has visibility 'Secret'; use Public or Private.",
        ),
        (
            [["Org", "Department", "Sales", "", "", "", "Public"], ["", "", " sales ", "", "", "", ""]],
            "Rows 2 and 3: the value 'sales' appears twice under 'Department'.",
        ),
        (
            [
                ["Org", "Location", "LDN", "", "Office", "", "Public"],
                ["", "", "PAR", "", "", "", ""],
                ["Org", "Site", "HQ", "", "office", "", "Public"],
                ["", "", "Annex", "", "", "", ""],
            ],
            "Row 4: the 10KC segment 'office' is mapped from both 'Location' (row 2) and 'Site'; map each segment from one HRIS field.",
        ),
    ],
)
def test_each_validation_error_is_reported_with_its_row(rows, expected_error):
    errors, _ = _messages(rows)
    assert expected_error in errors


def test_warnings_do_not_stop_and_the_report_reads_well():
    rows = [["", "Department", "Sales", "", "", "", "Public"]]
    errors, warnings = _messages(rows)
    assert errors == []
    assert warnings == [
        "Row 2: the field 'Department' has only one value; is the list complete?",
        "Row 2: the field 'Department' has no category in column A.",
    ]
    report = validate_mapping(parse_rows([HEADER, *rows], "Acme sheet")).markdown()
    assert report.startswith("**Data mapping table check: Acme sheet**")
    assert "Worth a look (we can continue):" in report and "Please fix" not in report


@pytest.mark.parametrize(
    ("rows", "expected_error"),
    [
        (
            [
                ["Org", "Department", "Sales", "", "", "", "Public"],
                ["", "", "Legal", "", "", "", "Pubic"],
            ],
            "Row 3: the value 'Legal' under 'Department' has visibility 'Pubic'; use Public or Private.",
        ),
        (
            [
                ["Org", "Department", "Sales", "", "", "", "Public"],
                ["", "", "Legal", "", "", "", "Private"],
            ],
            "Row 3: the value 'Legal' says Private but its field 'Department' (row 2) says Public; a "
            "segment is all public or all private.",
        ),
        (
            [["Org", "Department", "Sales", "", "", "", ""], ["", "", "Legal", "", "", "", "Pubic"]],
            "Row 3: the value 'Legal' under 'Department' has visibility 'Pubic'; use Public or Private.",
        ),
    ],
)
def test_a_visibility_on_a_later_row_of_a_field_is_checked_too(rows, expected_error):
    errors, _ = _messages(rows)
    assert expected_error in errors


def test_a_field_whose_visibility_sits_on_a_later_row_of_a_merged_cell_is_fine():
    rows = [["Org", "Department", "Sales", "", "", "", ""], ["", "", "Legal", "", "", "", "private"]]
    table = parse_rows([HEADER, *rows], "test")
    assert validate_mapping(table).errors == []
    assert desired_segments(table) == [("Department", "private", ["Sales", "Legal"])]


@pytest.mark.parametrize("visibility", ["", "Secret", "Pubic"])
def test_segments_are_never_made_public_from_a_visibility_that_is_not_public_or_private(visibility):
    table = parse_rows([HEADER, ["Org", "Department", "Sales", "", "", "", visibility]], "test")
    with pytest.raises(ValueError, match="Row 2: the field 'Department' .* Public or Private"):
        plan_segments(table, [])


# --- hris-runbook check-mapping ------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
BLANK_VISIBILITY = [
    HEADER,
    ["Org", "Department", "Engineering", "", "", "", "Public"],
    ["", "", "Sales", "", "", "", ""],
    ["Place", "Work Location", "LDN", "", "Office", "London", ""],
    ["", "", "PAR", "", "", "Paris", ""],
]


def check_mapping(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "check-mapping", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def write_table(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


@pytest.mark.slow
def test_check_mapping_names_the_row_with_a_blank_visibility_and_exits_2(tmp_path):
    done = check_mapping("--mapping", str(write_table(tmp_path / "mapping.csv", BLANK_VISIBILITY)))
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("**Data mapping table check: mapping.csv**")
    assert "- Row 4: the field 'Work Location' needs Public or Private in column G." in done.stdout
    assert "Row 2" not in done.stdout and done.stderr == ""


@pytest.mark.slow
def test_check_mapping_of_a_clean_table_exits_0(tmp_path):
    rows = [*BLANK_VISIBILITY[:3], ["Place", "Work Location", "LDN", "", "Office", "London", "Private"]]
    done = check_mapping("--mapping", str(write_table(tmp_path / "mapping.csv", rows)))
    assert done.returncode == 0, done.stderr
    assert "Please fix" not in done.stdout
    assert "Worth a look (we can continue):" in done.stdout  # one value under Work Location


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("missing.csv", None, "mapping table (missing.csv): file not found"),
        ("empty.csv", "", "mapping table (empty.csv):"),
        ("broken.xlsx", "not a workbook", "mapping table (broken.xlsx): not a readable .xlsx workbook"),
    ],
)
def test_check_mapping_of_an_unreadable_file_is_one_line_and_exit_2(tmp_path, name, content, problem):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    done = check_mapping("--mapping", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: {problem}") and done.stderr.count("\n") == 1


@pytest.fixture
def api_in_env(prefect_api, monkeypatch):
    """PREFECT_API_URL in the environment, as in a shell: without it the in-process CLI would point
    this test process (and every subprocess a later test starts) at the local stack's PREFECT_HOME."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)


def test_check_mapping_reads_a_sheet_link_with_the_default_block(sheets, sheets_block, capsys, api_in_env):
    from cli.main import main

    sheets.add_spreadsheet(KEY, {"Data Mapping": BLANK_VISIBILITY}, [sheets_block.client_email])
    assert main(["check-mapping", "--mapping", LINK]) == 2
    out = capsys.readouterr().out
    assert "Google Sheet" in out and "'Data Mapping'" in out
    assert "- Row 4: the field 'Work Location' needs Public or Private in column G." in out

    sheets.add_spreadsheet(KEY, {"Data Mapping": REALISTIC}, [sheets_block.client_email])
    assert main(["check-mapping", "--mapping", LINK]) == 0
    assert "No problems found." in capsys.readouterr().out


def test_check_mapping_of_a_sheet_says_what_is_missing_in_one_line(
    sheets, sheets_credentials, capsys, api_in_env
):
    from cli.main import main

    sheets_credentials.save("default", overwrite=True)
    sheets.add_spreadsheet(KEY, {"Sheet1": REALISTIC}, ["someone-else@example.com"])
    try:
        assert main(["check-mapping", "--mapping", LINK]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: the sheet") and sheets_credentials.client_email in err
    finally:
        delete_block(GoogleSheetsCredentials, "default")
    assert main(["check-mapping", "--mapping", LINK]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("error: No Google Sheets Credentials block named 'default'")
