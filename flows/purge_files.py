"""`purge-old-files`: daily, deletes staff lists nobody needs any more, on the worker and the SFTP server.

On the worker: each upload's generated files, kept for the CSM's step 9, once unchanged for
`hris_files_retention_days` (Variable, default 30), unless unfinished work still needs them: an
onboarding's sample and its files until sftp-integration is past its production wait, an upload's
files while its process-upload run is alive. On the SFTP server: handled uploads in each
registered inbox's archive/ and refused/ after `sftp_archive_retention_days` (default 90); the
record of what was processed stays in the process-upload runs.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paramiko
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed
from prefect.variables import Variable

from blocks import BlockNotConfigured, SftpServer, load_block
from tasks.files_dir import files_dir
from tasks.registry import registrations
from tasks.retention import DEFAULT_RETENTION_DAYS, Purged, purge_expired
from tasks.sftp import inbox_path, purge_handled
from tasks.upload_queue import upload_runs

DEFAULT_ARCHIVE_RETENTION_DAYS = 90


def _days(variable: str, default: int) -> int:
    days = Variable.get(variable, default=default)
    if not isinstance(days, int) or isinstance(days, bool) or days <= 0:
        raise ValueError(f"Variable {variable}: {days!r} is not a number of days > 0")
    return days


def unfinished_work():
    """in_use(customer key, entry): the sample files of customers still onboarding (sftp-integration
    uses them at steps 4 and 6) and the files of uploads whose process-upload run is not over."""
    onboarding = {
        reg.customer.key for reg in registrations() if reg.mode == "onboarding" or reg.waiting_run_id
    }
    uploads = {
        (r.parameters.get("customer_key"), Path(str(r.parameters.get("upload"))).stem) for r in upload_runs()
    }

    def in_use(customer_key: str, entry: str) -> bool:
        sample = customer_key in onboarding and entry.startswith("sample-")
        return sample or (customer_key, entry) in uploads

    return in_use


@task(name="purge-worker-files", cache_policy=NO_CACHE)
def purge_worker_files(root: Path, retention: timedelta, now: datetime) -> Purged:
    """The generated files of every finished upload past its retention, on this worker."""
    return purge_expired(root, retention, now, unfinished_work())


@task(name="purge-sftp-archives", cache_policy=NO_CACHE)
def purge_sftp_archives(cutoff: datetime) -> tuple[int, list[str]]:
    """Delete old handled uploads in every registered inbox, one connection per server.

    A server that cannot be reached is listed as a problem; the other servers are still purged.
    """
    by_server = defaultdict(list)
    for reg in registrations():
        by_server[reg.sftp_block].append(reg.customer.key)
    removed, problems = 0, []
    for block_name, keys in by_server.items():
        try:
            server = load_block(SftpServer, block_name)
            with server.get_client() as sftp:
                for key in keys:
                    removed += purge_handled(sftp, inbox_path(server.inbox_root, key), cutoff)
        except (BlockNotConfigured, OSError, paramiko.SSHException) as exc:
            problems.append(f"SFTP server {block_name}: {exc.__class__.__name__}: {exc}")
    return removed, problems


@flow(name="purge-old-files")
def purge_old_files() -> dict:
    """Delete generated files and archived uploads past their retention; report counts only."""
    logger = get_run_logger()
    try:
        days = _days("hris_files_retention_days", DEFAULT_RETENTION_DAYS)
        archive_days = _days("sftp_archive_retention_days", DEFAULT_ARCHIVE_RETENTION_DAYS)
    except ValueError as exc:
        return Failed(message=str(exc))
    now = datetime.now(UTC)
    root = files_dir()
    purged = purge_worker_files(root, timedelta(days=days), now)
    logger.info(
        "Worker: deleted %d upload(s) older than %d days (%.1f MB) from %s; kept %d",
        purged.entries,
        days,
        purged.bytes / 1e6,
        root,
        purged.kept,
    )
    archived, problems = purge_sftp_archives(now - timedelta(days=archive_days))
    logger.info("SFTP: deleted %d handled upload(s) older than %d days", archived, archive_days)
    for problem in problems:
        logger.warning(problem)
    result = {
        "deleted": purged.entries,
        "bytes": purged.bytes,
        "kept": purged.kept,
        "retention_days": days,
        "sftp_deleted": archived,
        "sftp_retention_days": archive_days,
    }
    if problems:
        return Failed(message="; ".join(problems))
    return result
