"""An upload received (runbook SFTP step 8, before the files): the claim downloaded from processing/
and fingerprinted once; the same bytes as an applied upload are a duplicate, reported once and never
applied twice (after a "no" the same bytes are a new decision); an upload older than the last one
applied is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

from blocks import SftpServer, SlackWorkspace, load_block
from tasks.alerts import alert_once
from tasks.contracts import PROCESSING, REFUSED, inbox_folder
from tasks.deletion_grace import grace_ends
from tasks.once import already_done, once_key, once_task
from tasks.records import Received
from tasks.registry import Registration, last_applied
from tasks.sftp import download, inbox_path, original_name
from tasks.slack import Slack
from tasks.templating import render
from tasks.upload_finish import finish_upload
from tasks.upload_history import APPLIED
from tasks.upload_queue import claims_in_processing


@once_task("receive-upload")
def receive_upload(reg: Registration, upload: str, local: Path, once_key: str) -> Received:
    """Download the claimed upload and fingerprint its bytes, once per claim."""
    fetch_claimed(reg, upload, local)
    digest = hashlib.sha256()
    with local.open("rb") as handle:
        for chunk in iter(lambda: handle.read(2**20), b""):
            digest.update(chunk)
    return Received(sha256=digest.hexdigest(), size=local.stat().st_size)


def fetch_claimed(reg: Registration, upload: str, local: Path) -> Path:
    """processing/<upload> from the customer's inbox to `local`."""
    server = load_block(SftpServer, reg.sftp_block)
    local.parent.mkdir(parents=True, exist_ok=True)
    inbox = inbox_path(server.inbox_root, reg.customer.key)
    with server.get_client() as sftp:
        download(sftp, inbox_folder(inbox, PROCESSING, upload), local, server.max_upload_mb * 2**20)
    return local


@once_task("first-claim-of-content")
def first_claim_of_content(upload: str, once_key: str) -> str:
    """The first claim with these bytes: later claims of the same bytes get this answer back."""
    return upload


# APPLIED ("applied"): how the outcome of an applied upload starts (tasks/upload_history.py)


def applied_copy(customer_key: str, upload: str, received: Received) -> str | None:
    """The earlier claim with the same bytes that was applied, or None: after a "no" (rejected,
    refused, failed) the same bytes are a new decision. Each such "no" opens the next content key."""
    for turn in range(1, 10_000):
        step = f"content-{received.sha256}" if turn == 1 else f"content-{received.sha256}-{turn}"
        first = first_claim_of_content(upload, once_key(customer_key, step))
        if first == upload:
            return None
        decided = already_done(once_key(customer_key, f"decided-{first}-{received.sha256[:16]}"))
        if isinstance(decided, str) and decided.startswith(APPLIED):
            return first
    raise AssertionError("unreachable")


@once_task("report-duplicate")
def report_duplicate(slack: SlackWorkspace, text: str, once_key: str) -> str:
    """One notice in #monitoring-hris-files per duplicate claim."""
    return Slack(slack).post(slack.monitoring_channel, text, once_key=once_key).ts


def duplicate_or_superseded(
    reg: Registration, slack: SlackWorkspace, upload: str, received: Received
) -> dict | None:
    """The same bytes as an earlier applied upload (reported once, never applied twice), or an upload
    older than the last one applied: decided here, with no files made. None: neither."""
    customer_key, name = reg.customer.key, original_name(upload)
    first = applied_copy(customer_key, upload, received)
    if first is not None and not grace_ends(reg, upload, received.sha256):
        text = render(
            "slack/upload_duplicate.md.j2", company=reg.customer.company_name, upload=name, first=first
        )
        report_duplicate(slack, text, once_key(customer_key, f"duplicate-{upload}"))
        finish_upload(reg, upload, None, f"duplicate of {first}: not applied again")
        return {"upload": name, "duplicate_of": first}
    newest = last_applied(customer_key)
    if newest is not None and newest > upload and upload in claims_in_processing(reg):
        return superseded(reg, slack, upload, newest)
    return None


def superseded(reg: Registration, slack: SlackWorkspace, upload: str, newest: str) -> dict:
    """An older upload after a newer one was applied: refused, one alert; never applied over newer data."""
    reason = (
        f"it is older than {original_name(newest)} (claimed as {newest}), which is already applied; "
        "an older file is never applied over newer data. If the customer means it, they upload it again"
    )
    text = render(
        "slack/upload_refused.md.j2",
        company=reg.customer.company_name,
        upload=original_name(upload),
        reason=reason,
    )
    alert_once(
        Slack(slack), slack.monitoring_channel, text, once_key(reg.customer.key, f"superseded-{upload}")
    )
    finish_upload(reg, upload, None, f"refused: superseded by {newest}", to=REFUSED)
    return {"upload": original_name(upload), "superseded_by": newest}
