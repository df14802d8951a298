"""`purge-generated-files`: daily, deletes generated staff-list files the CSMs no longer need.

process-upload and sftp-integration keep each upload's files on the worker for the CSM's step 9;
after `hris_files_retention_days` (Variable, default 30) without a change they go.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger
from prefect.states import Failed
from prefect.variables import Variable
from pydantic import PositiveInt

from flows.process_upload import files_dir
from tasks.retention import DEFAULT_RETENTION_DAYS, purge_expired


@flow(name="purge-generated-files")
def purge_generated_files(retention_days: PositiveInt | None = None) -> dict:
    """Delete every upload's files unchanged for the retention period; report counts only."""
    days = retention_days or Variable.get("hris_files_retention_days", default=DEFAULT_RETENTION_DAYS)
    if not isinstance(days, int) or isinstance(days, bool) or days <= 0:
        return Failed(message=f"Variable hris_files_retention_days: {days!r} is not a number of days > 0")
    root = files_dir()
    purged = purge_expired(root, timedelta(days=days), datetime.now(UTC))
    get_run_logger().info(
        "Deleted %d upload(s) older than %d days (%.1f MB) from %s; kept %d",
        purged.entries,
        days,
        purged.bytes / 1e6,
        root,
        purged.kept,
    )
    return {"deleted": purged.entries, "bytes": purged.bytes, "kept": purged.kept, "retention_days": days}
