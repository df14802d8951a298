"""A plain client for the hub admin API (docs/hub-api.md), retrying 429 and 5xx."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tasks.retry import retry_delay


class HubError(RuntimeError):
    """The hub refused a call; the message says which call and why."""


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
                    raise HubError(
                        f"hub {method} {path}: cannot connect ({exc.__class__.__name__})"
                    ) from None
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
                raise HubError(f"hub {method} {path}: {response.status_code} {detail}")
            return response
        raise AssertionError("unreachable")

    def list_segments(self) -> list[dict]:
        return self._call("GET", "/segments").json()["segments"]

    def create_segment(self, name: str, visibility: str) -> dict:
        return self._call("POST", "/segments", json={"name": name, "visibility": visibility}).json()[
            "segment"
        ]

    def add_options(self, segment_id: str, options: list[str]) -> list[str]:
        """Bulk add options; returns the ones the hub actually added."""
        return self._call("POST", f"/segments/{segment_id}/options", json={"options": options}).json()[
            "added"
        ]

    def export_members(self, target: Path) -> Path:
        target.write_bytes(self._call("GET", "/members/export").content)
        return target

    def _upload(self, path: str, csv_file: Path) -> dict:
        return self._call(
            "POST", path, content=csv_file.read_bytes(), headers={"Content-Type": "text/csv"}
        ).json()

    def upload_invites(self, csv_file: Path) -> int:
        return self._upload("/invites/bulk", csv_file)["accepted"]

    def update_members(self, csv_file: Path) -> int:
        return self._upload("/members/bulk-update", csv_file)["updated"]

    def remove_members(self, csv_file: Path) -> int:
        return self._upload("/members/bulk-remove", csv_file)["removed"]
