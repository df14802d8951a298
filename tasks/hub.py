"""A plain client for the hub admin API (docs/hub-api.md), retrying 429, 5xx and lost connections.

Retried writes act once: a bulk upload carries an Idempotency-Key (the SHA-256 of the once-step's
key, its action and its bytes) that the hub answers from memory when it sees it again, also when
the retry is a new process after a killed worker; the same bytes in another step (a member removed
again after coming back) are acted on. A segment whose create answer was lost is found by its name.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tasks.retry import retry_delay


class HubError(RuntimeError):
    """The hub refused a call; the message says which call and why."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class HubAddressRefused(HubError):
    """The hub address is not one the admin token may be sent to."""


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _host_allowed(host: str, allowed_hosts: list[str]) -> bool:
    """`*.10kc.com` allows any name under 10kc.com; any other entry allows exactly that host."""
    for pattern in allowed_hosts:
        pattern = pattern.strip().lower().rstrip(".")
        if pattern.startswith("*.") and host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
            return True
        if host == pattern:
            return True
    return False


def check_hub_address(url: str, allowed_hosts: list[str], loopback_ok: bool = False) -> str:
    """`url` when the admin token may go there: https to an allowed host, or loopback (any scheme)
    when `loopback_ok` (the sandbox's override); else HubAddressRefused, before any request."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.username is not None or parts.password is not None:
        raise HubAddressRefused(
            f"hub address {parts.scheme}://…@{host}: credentials in the URL are not allowed"
        )
    if loopback_ok and host in LOOPBACK_HOSTS and parts.scheme in ("http", "https"):
        return url
    if parts.scheme != "https":
        raise HubAddressRefused(f"hub address {url!r} must use https; the admin token is not sent otherwise")
    if not _host_allowed(host, allowed_hosts):
        raise HubAddressRefused(
            f"hub address {url!r}: {host or 'no host'} is not an allowed hub host "
            f"({', '.join(allowed_hosts) or 'none'}); fix the hub URL or the 10KC Hub block's allowed hosts"
        )
    return url


class HubClient:
    def __init__(self, base_url: str, token: str, timeout: float = 60, max_retries: int = 4):
        self.max_retries = max_retries
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout, trust_env=False
        )

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt == self.max_retries:
                    problem = f"no answer after {attempt + 1} attempts ({exc.__class__.__name__})"
                    raise HubError(f"hub {method} {path}: {problem}") from None
                time.sleep(0.5 * 2**attempt)
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if attempt < self.max_retries:
                    time.sleep(retry_delay(response.headers, attempt, first_delay=0.5))
                    continue
            if response.status_code >= 400:
                try:
                    detail = response.json().get("message") or response.json().get("error")
                except ValueError:
                    detail = response.text[:200]
                raise HubError(f"hub {method} {path}: {response.status_code} {detail}", response.status_code)
            return response
        raise AssertionError("unreachable")

    def list_segments(self) -> list[dict]:
        return self._call("GET", "/segments").json()["segments"]

    def create_segment(self, name: str, visibility: str) -> dict:
        """Create a segment; one already there under this name (an earlier create whose answer was
        lost) is returned instead, if its visibility matches."""
        try:
            return self._call("POST", "/segments", json={"name": name, "visibility": visibility}).json()[
                "segment"
            ]
        except HubError as exc:
            if exc.status != 409:
                raise
        existing = next((s for s in self.list_segments() if s["name"].casefold() == name.casefold()), None)
        if existing is None or existing["visibility"] != visibility:
            raise HubError(f"hub POST /segments: a segment named {name} exists but is not {visibility}")
        return existing

    def add_options(self, segment_id: str, options: list[str]) -> list[str]:
        """Bulk add options; returns the ones the hub actually added."""
        return self._call("POST", f"/segments/{segment_id}/options", json={"options": options}).json()[
            "added"
        ]

    def export_members(self, target: Path) -> Path:
        target.write_bytes(self._call("GET", "/members/export").content)
        return target

    def _upload(self, path: str, csv_file: Path, once_key: str) -> dict:
        """POST a bulk CSV, acted on once per `once_key` (the step applying it) and content."""
        content = csv_file.read_bytes()
        key = hashlib.sha256(once_key.encode() + b"\0" + path.encode() + b"\0" + content).hexdigest()
        headers = {"Content-Type": "text/csv", "Idempotency-Key": key}
        return self._call("POST", path, content=content, headers=headers).json()

    def upload_invites(self, csv_file: Path, once_key: str) -> int:
        return self._upload("/invites/bulk", csv_file, once_key)["accepted"]

    def update_members(self, csv_file: Path, once_key: str) -> int:
        return self._upload("/members/bulk-update", csv_file, once_key)["updated"]

    def remove_members(self, csv_file: Path, once_key: str) -> int:
        return self._upload("/members/bulk-remove", csv_file, once_key)["removed"]
