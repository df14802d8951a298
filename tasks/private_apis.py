"""The private names of Prefect and the SDKs this project relies on, each imported in this one place.

None of them is exported publicly, and each is what the public API cannot do for us. An upgrade that
moves or changes one fails tests/test_private_apis.py, which pins what we rely on, naming it.
"""

from __future__ import annotations

from typing import Any

# Pause a run in-process *without* an expiry: Prefect's pause_flow_run fails the run when its timeout
# passes, and a CSM's answer may take days.
from prefect.utilities.engine import propose_state_sync


def slack_upload_bytes(client: Any, url: str, data: bytes) -> int:
    """Step two of files_upload_v2 (the bytes to Slack's upload URL), on its own, so the share that
    follows can be done once; returns the HTTP status. slack_sdk has no public call for it."""
    sent = client._upload_file(
        url=url, data=data, logger=client._logger, timeout=client.timeout, proxy=client.proxy, ssl=client.ssl
    )
    return int(sent.status)


def __getattr__(name: str) -> Any:
    """What workos raises for a dropped connection and a timeout (not exported; the public Transport*
    errors are the HTTP backend's own, caught and re-raised as these). Imported on first use: the
    SDK takes ~0.7 s to import, and every flow-run process imports this module (issue 24)."""
    if name in ("WorkOSConnectionError", "WorkOSTimeoutError"):
        from workos import _errors

        return getattr(_errors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["propose_state_sync", "slack_upload_bytes"]  # and the two WorkOS errors, from __getattr__
