"""Google service-account credentials for reading customers' data mapping tables."""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import gspread
import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2.service_account import Credentials
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient
from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, field_validator

from tasks.retry import retry_delay

SCOPES = ["https://www.googleapis.com/auth/spreadsheets.readonly"]
GOOGLE_HOSTS = ("https://sheets.googleapis.com", "https://www.googleapis.com")


class _ApiBaseSession(AuthorizedSession):
    """Sends Google API calls to another base URL (the sandbox stand-in); nothing else changes."""

    def __init__(self, credentials: Credentials, api_base_url: str):
        super().__init__(credentials)
        self.api_base_url = api_base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        for host in GOOGLE_HOSTS:
            if url.startswith(host):
                url = self.api_base_url + url[len(host) :]
        return super().request(method, url, *args, **kwargs)


class RetryingHTTPClient(HTTPClient):
    """gspread's HTTP client with a timeout and bounded retries of 408/429/5xx (honouring
    Retry-After), timeouts and dropped connections: we only read, so a retry is always safe."""

    def __init__(
        self, auth, session=None, max_retries: int = 4, first_delay: float = 1.0, timeout: float = 60
    ):
        super().__init__(auth, session)
        self.max_retries, self.first_delay = max_retries, first_delay
        self.set_timeout(timeout)  # gspread's default is none: a silent server would hang the run

    def request(self, *args: Any, **kwargs: Any):
        for attempt in range(self.max_retries + 1):
            try:
                return super().request(*args, **kwargs)
            except APIError as err:
                retryable = err.code in (408, 429) or err.code >= 500
                if not retryable or attempt == self.max_retries:
                    raise
                time.sleep(retry_delay(err.response.headers, attempt, self.first_delay))
            except (requests.ConnectionError, requests.Timeout):
                if attempt == self.max_retries:
                    raise
                time.sleep(self.first_delay * 2**attempt)
        raise AssertionError("unreachable")


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
