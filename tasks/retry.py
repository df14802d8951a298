"""How long to wait before retrying a rate-limited or failing HTTP call; shared by our HTTP clients."""

from __future__ import annotations

from collections.abc import Mapping

LONGEST_WAIT_SECONDS = 60.0


def retry_delay(headers: Mapping[str, str], attempt: int, first_delay: float) -> float:
    """The server's Retry-After (in seconds, at most a minute) when it gives one, else exponential backoff."""
    retry_after = headers.get("Retry-After", "").strip()
    delay = float(retry_after) if retry_after.isdigit() else first_delay * 2**attempt
    return min(delay, LONGEST_WAIT_SECONDS)
