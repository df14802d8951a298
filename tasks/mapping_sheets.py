"""A data mapping table in Google Sheets: the one reading of a mapping link, and the sheet read with
the same caps as an .xlsx file, every failure a line a person can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tasks.mapping_table import MappingTable, parse_rows
from tasks.tabular import SHEET_MAX_BYTES, SHEET_MAX_COLUMNS, SHEET_MAX_ROWS, SHEET_TOO_BIG, SheetRows

if TYPE_CHECKING:
    import gspread


class SheetsError(RuntimeError):
    """The mapping sheet could not be read for a reason a person can fix; the message says how."""


_SHEET_KEY = r"[a-zA-Z0-9_-]{10,}"


class SheetsCredentials(Protocol):
    """What reading a sheet needs of the GoogleSheetsCredentials block (blocks/google_sheets.py)."""

    @property
    def client_email(self) -> str: ...

    def get_client(self) -> gspread.Client: ...


@dataclass(frozen=True)
class MappingLink:
    """Where a data mapping table is: a Google Sheet (`sheet_key`) or a CSV/XLSX file on the worker."""

    link: str  # as given, trimmed: what is registered and shown
    sheet_key: str | None  # None: a file path


def parse_mapping_link(link: str) -> MappingLink:
    """The one reading of a mapping link (check-mapping, the mapping-table form, the registration,
    every upload): a Google Sheets link or a bare spreadsheet key, spaces around or not; anything
    else (a path with a `/` or an extension) is a file on the worker."""
    value = link.strip()
    if not value:
        raise SheetsError("no data mapping table link given")
    if value.lower().startswith(("https://", "http://")) or re.fullmatch(_SHEET_KEY, value):
        return MappingLink(value, spreadsheet_key(value))
    return MappingLink(value, None)


def spreadsheet_key(url_or_key: str) -> str:
    """The spreadsheet key from a Google Sheets link (…/spreadsheets/d/<key>/edit…) or the key itself."""
    value = url_or_key.strip()
    found = re.search(r"/spreadsheets/d/([a-zA-Z0-9_-]+)", value)
    if found:
        return found.group(1)
    if re.fullmatch(_SHEET_KEY, value):
        return value
    raise SheetsError(f"{url_or_key!r} is not a Google Sheets link or spreadsheet key")


def sheet_range() -> str:
    """One row and one column past the caps (A1:AY10001): what is beyond them is never fetched."""
    from openpyxl.utils import get_column_letter

    return f"A1:{get_column_letter(SHEET_MAX_COLUMNS + 1)}{SHEET_MAX_ROWS + 1}"


def read_mapping_sheet(credentials: SheetsCredentials, url_or_key: str) -> MappingTable:
    """Read the table from Google Sheets: the worksheet whose name mentions 'mapping', else the first."""
    from google.auth.exceptions import GoogleAuthError
    from gspread.exceptions import APIError, SpreadsheetNotFound
    from requests import RequestException

    key = spreadsheet_key(url_or_key)
    client = credentials.get_client()
    try:
        spreadsheet = client.open_by_key(key)
        worksheets = spreadsheet.worksheets()
        sheet = next((w for w in worksheets if "mapping" in w.title.lower()), worksheets[0])
        rows = sheet.get_values(sheet_range())  # bounded: one row and one column past the caps
    except SpreadsheetNotFound:
        raise SheetsError(f"no Google Sheet with key {key}: check the link") from None
    except PermissionError:
        raise SheetsError(
            f"the sheet {key} is not shared with {credentials.client_email}: share it with that address "
            "(Viewer is enough), then answer the form again"
        ) from None
    except APIError as exc:
        if exc.code == 429:
            raise SheetsError("Google Sheets is rate-limiting us; try again in a minute") from None
        raise SheetsError(
            f"Google Sheets answered {exc.code} for sheet {key}: {exc.error.get('message', '')}"
        ) from None
    except (GoogleAuthError, RequestException) as exc:
        raise SheetsError(f"could not reach Google Sheets for sheet {key} ({type(exc).__name__})") from None
    where = f"Google Sheet {spreadsheet.title!r} / {sheet.title!r}"
    if problem := sheet_too_big(rows):
        raise SheetsError(f"{where}: {problem}")
    return parse_rows(rows, where)


def sheet_too_big(rows: SheetRows) -> str | None:
    """The xlsx path's caps for a sheet's values: rows, columns and bytes of text."""
    if len(rows) > SHEET_MAX_ROWS or any(
        any(str(v).strip() for v in row[SHEET_MAX_COLUMNS:]) for row in rows
    ):
        return f"the sheet is larger than a mapping table; {SHEET_TOO_BIG}"
    if sum(len(str(v).encode()) for row in rows for v in row) > SHEET_MAX_BYTES:
        return f"the sheet holds over {SHEET_MAX_BYTES >> 20} MB of text; a mapping table is far smaller"
    return None
