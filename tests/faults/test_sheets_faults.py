"""Google Sheets faults while reading a data mapping table (tasks/mapping.py read_mapping_sheet
through blocks/google_sheets.py): a read is always safe to repeat, so every fault is retried and
the table is read whole; a server that never answers ends the read in one clear line."""

from __future__ import annotations

import json

import pytest

from blocks.google_sheets import GoogleSheetsCredentials
from sandbox.sheets import make_service_account
from tasks.mapping import SheetsError, read_mapping_sheet
from tests.test_mapping import KEY, LINK, REALISTIC

FAULTS = ["rate_limit", "server_error", "hang", "drop", "lost_answer"]


@pytest.fixture
def credentials(sheets):
    info = make_service_account(token_uri=f"{sheets.url}/token")
    block = GoogleSheetsCredentials(
        service_account_info=json.dumps(info), api_base_url=sheets.url, max_retries=2, timeout_seconds=1
    )
    sheets.add_spreadsheet(KEY, {"Sheet1": REALISTIC}, [block.client_email])
    return block


@pytest.mark.parametrize("fault", FAULTS)
def test_the_table_is_read_whole_through_each_fault(sheets, credentials, fault):
    sheets.inject("/values/", fault, hang_seconds=3)
    table = read_mapping_sheet(credentials, LINK)

    assert [kind for kind, _, _ in sheets.faults_served] == [fault]
    assert len(table.fields) == 2
    assert len(sheets.calls("/values/")) == 2


@pytest.mark.slow
def test_a_server_that_never_answers_ends_the_read_in_one_clear_line(sheets, credentials):
    sheets.inject("/values/", "drop", times=10)
    with pytest.raises(SheetsError, match="Google Sheets"):
        read_mapping_sheet(credentials, LINK)
    assert len(sheets.calls("/values/")) == 3  # the first try and two retries
