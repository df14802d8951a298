"""How the Google Sheets block's client talks HTTP: the sandbox's base URL, timeouts and retries.

Apart from blocks/google_sheets.py so that loading the block does not import gspread and google-auth.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2.service_account import Credentials
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient

from tasks.retry import retry_delay

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
