"""`make up`'s Google Sheets stand-in serves every `<key>.csv` of its folder as it is when asked."""

from __future__ import annotations

import csv
import json

import pytest

from blocks.google_sheets import GoogleSheetsCredentials
from sandbox.sheets import SheetsStandIn, make_service_account
from tasks.mapping import SheetsError, read_mapping_sheet

ROWS = [
    ["Category", "HRIS Field", "HRIS Values", "Notes", "10KC Segment", "10KC Value", "Visibility"],
    ["Org", "Department", "Engineering", "", "", "", "Public"],
]


def test_a_sheet_added_while_the_sandbox_runs_is_served(tmp_path):
    info = make_service_account(token_uri="http://placeholder/token")
    stand_in = SheetsStandIn(directory=tmp_path, shared_with=[info["client_email"]]).start()
    try:
        info["token_uri"] = f"{stand_in.url}/token"
        credentials = GoogleSheetsCredentials(
            service_account_info=json.dumps(info), api_base_url=stand_in.url, max_retries=0
        )
        link = "https://docs.google.com/spreadsheets/d/AddedLater0001/edit"
        with pytest.raises(SheetsError, match="no Google Sheet with key AddedLater0001"):
            read_mapping_sheet(credentials, link)
        with open(tmp_path / "AddedLater0001.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(ROWS)
        table = read_mapping_sheet(credentials, link)
        assert [f.hris_field for f in table.fields] == ["Department"]
    finally:
        stand_in.stop()
