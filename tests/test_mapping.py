"""The data mapping table: read from Google Sheets (gspread against the stand-in) and validated."""

from __future__ import annotations

import json

import pytest

from blocks.google_sheets import GoogleSheetsCredentials
from sandbox.http import Response
from tasks.mapping import SheetsError, parse_rows, read_mapping_sheet, spreadsheet_key, validate_mapping

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


def test_a_sheet_not_shared_with_the_service_account_says_whom_to_share_with(sheets, sheets_credentials):
    sheets.add_spreadsheet(KEY, {"Sheet1": REALISTIC}, shared_with=["someone-else@example.com"])
    with pytest.raises(SheetsError, match=f"not shared with {sheets_credentials.client_email}"):
        read_mapping_sheet(sheets_credentials, LINK)


def test_an_unknown_sheet_is_a_clear_error(sheets, sheets_credentials):
    with pytest.raises(SheetsError, match=f"no Google Sheet with key {KEY}"):
        read_mapping_sheet(sheets_credentials, KEY)


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
