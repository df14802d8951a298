"""The private names of Prefect and the SDKs this project relies on, each imported in this one place.

None of them is exported publicly, and each is what the public API cannot do for us. An upgrade that
moves or changes one fails tests/test_private_apis.py, which pins what we rely on, naming it.
"""

from __future__ import annotations

from typing import Any

# Pause a run in-process *without* an expiry: Prefect's pause_flow_run fails the run when its timeout
# passes, and a CSM's answer may take days.
from prefect.utilities.engine import propose_state_sync

# What workos raises for a dropped connection and a timeout (not exported; the public Transport*
# errors are the HTTP backend's own, caught and re-raised as these).
from workos._errors import WorkOSConnectionError, WorkOSTimeoutError


def slack_upload_bytes(client: Any, url: str, data: bytes) -> int:
    """Step two of files_upload_v2 (the bytes to Slack's upload URL), on its own, so the share that
    follows can be done once; returns the HTTP status. slack_sdk has no public call for it."""
    sent = client._upload_file(
        url=url, data=data, logger=client._logger, timeout=client.timeout, proxy=client.proxy, ssl=client.ssl
    )
    return int(sent.status)


__all__ = ["WorkOSConnectionError", "WorkOSTimeoutError", "propose_state_sync", "slack_upload_bytes"]
