"""Google Sheets API stand-in: the OAuth token endpoint, spreadsheet metadata and values, with the
error shapes Google returns (403 not shared, 404 not found, 429 rate limit)."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path
from urllib.parse import unquote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.http import Request, Response, StandIn


def make_service_account(token_uri: str, email: str = "hris-runbook@sandbox.iam.gserviceaccount.com") -> dict:
    """A service-account key with a fresh RSA key, as Google would hand out (for the sandbox only)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "sandbox",
        "private_key_id": "sandbox-key",
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": token_uri,
    }


def _google_error(code: int, status: str, message: str) -> Response:
    return Response(code, {"error": {"code": code, "message": message, "status": status}})


class SheetsStandIn(StandIn):
    """Spreadsheets added with `add_spreadsheet`, and (with `directory`) every `<key>.csv` in it as
    it is at the moment of the request, so a sheet dropped there while the sandbox runs is served."""

    name = "google-sheets"

    def __init__(self, directory: Path | None = None, shared_with: list[str] = ()) -> None:
        self.spreadsheets: dict[str, dict] = {}
        self.tokens: dict[str, str] = {}  # access token -> service account email
        self.directory = directory
        self.directory_shared_with = set(shared_with)
        super().__init__()

    def error_body(self, status: int, code: str) -> dict:
        status_name = "RESOURCE_EXHAUSTED" if status == 429 else "UNAVAILABLE"
        return {"error": {"code": status, "message": f"injected fault: {code}", "status": status_name}}

    def _from_directory(self, key: str) -> dict | None:
        """The sheet `<directory>/<key>.csv` read now; None if there is none (keys are never paths)."""
        if self.directory is None or not key.replace("-", "").replace("_", "").isalnum():
            return None
        path = self.directory / f"{key}.csv"
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.reader(f))
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        return {"title": key, "sheets": {"Data Mapping": rows}, "shared_with": self.directory_shared_with}

    def add_spreadsheet(
        self, key: str, sheets: dict[str, list[list[str]]], shared_with: list[str], title="Data mapping"
    ):
        self.spreadsheets[key] = {"title": title, "sheets": sheets, "shared_with": set(shared_with)}

    def setup(self) -> None:
        self.route("POST", "/token", self._token)
        self.route("GET", r"/v4/spreadsheets/(?P<key>[^/]+)", self._metadata)
        self.route("GET", r"/v4/spreadsheets/(?P<key>[^/]+)/values/(?P<range>.+)", self._values)

    def _token(self, request: Request) -> Response:
        assertion = request.params.get("assertion", "")
        try:
            payload = assertion.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError):
            return Response(400, {"error": "invalid_grant", "error_description": "bad assertion"})
        token = f"ya29.sandbox-{len(self.tokens) + 1}"
        self.tokens[token] = claims.get("iss", "")
        return Response(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _spreadsheet(self, request: Request) -> tuple[dict | None, Response | None]:
        who = self.tokens.get(request.bearer or "")
        if who is None:
            return None, _google_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
            )
        sheet = self.spreadsheets.get(request.match["key"]) or self._from_directory(request.match["key"])
        if sheet is None:
            return None, _google_error(404, "NOT_FOUND", "Requested entity was not found.")
        if who not in sheet["shared_with"]:
            return None, _google_error(403, "PERMISSION_DENIED", "The caller does not have permission")
        return sheet, None

    def _metadata(self, request: Request) -> Response:
        sheet, error = self._spreadsheet(request)
        if error:
            return error
        return Response(
            200,
            {
                "spreadsheetId": request.match["key"],
                "properties": {"title": sheet["title"], "locale": "en_GB", "timeZone": "Europe/London"},
                "sheets": [
                    {
                        "properties": {
                            "sheetId": i,
                            "title": title,
                            "index": i,
                            "sheetType": "GRID",
                            "gridProperties": {"rowCount": max(len(rows), 1000), "columnCount": 26},
                        }
                    }
                    for i, (title, rows) in enumerate(sheet["sheets"].items())
                ],
            },
        )

    def _values(self, request: Request) -> Response:
        sheet, error = self._spreadsheet(request)
        if error:
            return error
        wanted = unquote(request.match["range"])
        name = wanted.split("!")[0].strip("'").replace("''", "'")
        if name not in sheet["sheets"]:
            return _google_error(400, "INVALID_ARGUMENT", f"Unable to parse range: {name}")
        rows = sheet["sheets"][name]
        if bounds := re.search(r"!A1:([A-Z]+)(\d+)$", wanted):  # like Google: nothing past the range
            last_column = 0
            for letter in bounds.group(1):
                last_column = last_column * 26 + ord(letter) - 64
            rows = [row[:last_column] for row in rows[: int(bounds.group(2))]]
        return Response(200, {"range": f"'{name}'!A1:Z{len(rows)}", "majorDimension": "ROWS", "values": rows})
