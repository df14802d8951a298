"""Google service-account credentials for reading customers' data mapping tables."""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, field_validator

if TYPE_CHECKING:
    import gspread

SCOPES = ["https://www.googleapis.com/auth/spreadsheets.readonly"]


class GoogleSheetsCredentials(Block):
    """A Google service account that customers share their data mapping sheets with (Viewer).

    Example:
        ```python
        from blocks.google_sheets import GoogleSheetsCredentials
        sheets = GoogleSheetsCredentials.load("default")
        client = sheets.get_client()
        ```
    """

    _block_type_name = "Google Sheets Credentials"
    _description = "Service account used to read data mapping tables from Google Sheets."
    model_config = ConfigDict(hide_input_in_errors=True)  # errors never echo a secret

    service_account_info: SecretStr = Field(
        title="Service account JSON",
        description="The service account's JSON key, pasted whole (client_email, private_key, token_uri…)",
    )
    api_base_url: str | None = Field(
        title="API base URL",
        default=None,
        description="Leave empty for Google; the sandbox sets its own stand-in address",
    )
    max_retries: int = Field(
        title="Max retries",
        default=4,
        ge=0,
        le=10,
        description="Retries of 429, 5xx and lost connections, with backoff",
    )
    timeout_seconds: float = Field(
        title="Timeout (seconds)", default=60, gt=0, description="Per-request timeout"
    )

    @field_validator("service_account_info")
    @classmethod
    def _is_service_account_json(cls, value: SecretStr) -> SecretStr:
        try:
            info = json.loads(value.get_secret_value())
        except json.JSONDecodeError:
            raise ValueError("service_account_info must be the service account's JSON key") from None
        missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
        if info.get("type") != "service_account" or missing:
            raise ValueError(
                f"service_account_info is not a service-account key (missing: {', '.join(missing) or 'type'})"
            )
        return value

    @property
    def client_email(self) -> str:
        """The address customers share their sheet with."""
        return json.loads(self.service_account_info.get_secret_value())["client_email"]

    def get_client(self) -> gspread.Client:
        # imported here: gspread and google-auth take ~0.3 s, and every flow-run process loads blocks
        import gspread
        from google.auth.transport.requests import AuthorizedSession
        from google.oauth2.service_account import Credentials

        from blocks.google_sheets_http import RetryingHTTPClient, _ApiBaseSession

        credentials = Credentials.from_service_account_info(
            json.loads(self.service_account_info.get_secret_value()), scopes=SCOPES
        )
        session = (
            _ApiBaseSession(credentials, self.api_base_url)
            if self.api_base_url
            else AuthorizedSession(credentials)
        )
        http_client = functools.partial(
            RetryingHTTPClient, max_retries=self.max_retries, timeout=self.timeout_seconds
        )
        return gspread.Client(auth=None, session=session, http_client=http_client)
