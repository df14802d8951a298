"""Runbook "File-based implementation (SFTP)", steps 1–9, with a person approving at each gate."""

import tempfile
from pathlib import Path
from typing import Literal

from prefect import flow, task
from prefect.input import RunInput
from prefect.states import Failed
from pydantic import BaseModel, Field, field_validator

from blocks import SftpServer, SlackWorkspace, SmtpServer, TenKCHub, load_block, optional_block
from flows.approvals import (
    WaitSettings,
    ask,
    current_run_id,
    ends_on_rejection,
    record,
    request_approval,
    run_link,
)
from flows.process_upload import (
    files_dir,
    generate_for,
    load_mapping,
    review_files,
    share_files,
    summary_text,
)
from flows.progress import Progress
from flows.steps import csm_notice, help_center_url, send_reviewed_email, update_hub_segments
from tasks.customer import Customer
from tasks.emails import draft_sftp_implementation_email, draft_sftp_review_email
from tasks.files import DELETIONS, INVITES, UPDATES
from tasks.once import already_done, once_key, once_policy
from tasks.platforms import load_catalogue
from tasks.registry import Registration, register
from tasks.sftp import archive, claim, download, inbox_path
from tasks.support import post_support_request, sftp_support_request

STEPS = [
    "Implementation email; customer confirms frequency, SFTP server and sample CSV",
    "Support request with the sample CSV",
    "The three files from the sample, in the account channel",
    "Review email to the customer; customer confirms",
    "Hub segments",
    "Support request for production",
    "Watching for the production upload",
    "Files from the production upload, in #monitoring-hris-files",
    "CSM applies the files in the hub",
]
HUB_PATHS = {
    INVITES: "Invite Members > Bulk Invites > Upload member profile data",
    UPDATES: "Members > Manage Members > Actions > Edit members",
    DELETIONS: "Members > Manage Members > Actions > Remove members from Hub",
}


class CustomerReady(RunInput):
    """What the customer confirmed after the implementation email (SFTP step 1)."""

    upload_frequency: Literal["weekly", "monthly"] = Field(description="How often they will upload")
    sftp_server_confirmed: bool = Field(description="The customer can reach the SFTP server and their inbox")

    @field_validator("sftp_server_confirmed")
    @classmethod
    def _server_confirmed(cls, confirmed: bool) -> bool:
        if not confirmed:
            raise ValueError("answer once the customer has confirmed they can reach the SFTP server")
        return confirmed

    sample_csv: str = Field(description="File name of the sample CSV they uploaded to their inbox")
    mapping_link: str = Field(description="The completed data mapping table (Google Sheets link)")
    members_csv: str = Field(
        default="", description="Without a hub API: path on the worker of the hub's latest member export"
    )
    answered_by: str = Field(min_length=1, description="Your name")


class CustomerConfirmed(RunInput):
    """The customer reviewed the three files (SFTP step 4)."""

    confirmed_by: str = Field(min_length=1, description="Your name")
    notes: str = Field(default="", description="What the customer said")


class ProductionUpload(RunInput):
    """Filled in by process-upload when the production file has been processed (SFTP steps 7–8)."""

    upload: str
    files_dir: str
    invites: int = 0
    updates: int = 0
    deletions: int = 0
    deactivations: int = 0
    reactivations: int = 0
    rejected_rows: int = 0


class SampleFiles(BaseModel):
    """Where the files from the sample are, and their counts (for the review email)."""

    out_dir: str
    summary: dict


@task(name="files-from-sample", cache_policy=once_policy(), persist_result=True)
def files_from_sample(reg: Registration, sample_copy: str, once_key: str) -> SampleFiles:
    """SFTP step 3: the three files from the sample, shared in the customer's account channel."""
    sample = Path(sample_copy)
    out_dir = sample.parent / sample.stem
    with tempfile.TemporaryDirectory(prefix="hris-sample-") as tmp:
        summary = generate_for(reg, sample, out_dir, Path(tmp))
    slack = load_block(SlackWorkspace)
    text = summary_text(reg, sample.name.removeprefix("sample-"), summary)
    share_files.fn(slack, reg.customer.slack_channel, text, review_files(out_dir, summary), once_key)
    return SampleFiles(out_dir=str(out_dir), summary=summary)


@task(name="fetch-sample", cache_policy=once_policy(), persist_result=True)
def fetch_sample(reg: Registration, sample: str, once_key: str) -> str:
    """Download the sample CSV (kept with the customer's files for the support request), then archive
    it on the server so the watcher never takes it for a production upload."""
    server = load_block(SftpServer, reg.sftp_block)
    inbox = inbox_path(server.inbox_root, reg.customer.key)
    target = files_dir() / reg.customer.key / f"sample-{Path(sample).name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with server.get_client() as sftp:
        download(sftp, f"{inbox}/{sample}", target)
        if claim(sftp, inbox, sample):
            archive(sftp, inbox, sample)
    return str(target)


@task(name="apply-files-to-hub", cache_policy=once_policy(), persist_result=True)
def apply_files(hub: TenKCHub, hub_url: str, folder: str, once_key: str) -> dict:
    """SFTP step 9 through the hub API: invites, updates, then removals, once per upload."""
    client = hub.get_client(hub_url)
    folder_path = Path(folder)
    return {
        "invited": client.upload_invites(folder_path / INVITES),
        "updated": client.update_members(folder_path / UPDATES),
        "removed": client.remove_members(folder_path / DELETIONS),
    }


def files_gone(production: ProductionUpload, apply_key: str) -> str | None:
    """Why step 9 cannot apply the files through the API: purge-old-files deleted them first."""
    if Path(production.files_dir).is_dir() or already_done(apply_key) is not None:
        return None
    return (
        f"The files from {production.upload} are no longer on the worker (older than "
        "hris_files_retention_days): apply the copies in the Slack thread in the hub by hand"
    )


def _checklist(folder: str, hub_url: str) -> str:
    lines = [f"In the hub ({hub_url}), upload each file (they are also in the Slack thread):\n"]
    for name, path in HUB_PATHS.items():
        lines.append(f"- **{name}**: {path}. File: `{Path(folder) / name}`")
    return "\n".join(lines) + "\n"


@flow(name="sftp-integration")
@ends_on_rejection
def sftp_integration(customer: Customer, wait: WaitSettings | None = None) -> dict:
    """From the implementation email to the CSM applying the production files, each side effect once."""
    wait = wait or WaitSettings()
    progress = Progress("sftp-integration", customer.company_name, customer.key, STEPS)
    smtp, slack = load_block(SmtpServer), load_block(SlackWorkspace)
    catalogue, help_url = load_catalogue(), help_center_url()
    notify = csm_notice(customer)

    # 1. implementation email, then the customer's answers
    progress.mark(1, "waiting", "CSM reviews the email")
    draft = draft_sftp_implementation_email(customer, catalogue, help_url, smtp.default_cc)
    send_reviewed_email(customer, "sftp-implementation-email", draft, smtp, wait)
    progress.mark(1, "waiting", "customer: frequency, SFTP server, sample CSV")
    ready = ask(
        CustomerReady,
        key="customer-ready",
        title=f"{customer.company_name}: upload frequency, SFTP server and sample CSV",
        description=(
            "When the customer has confirmed the upload frequency and the SFTP server, and uploaded a "
            f"sample CSV to their inbox (`{customer.key}/`), fill this in."
        ),
        wait=wait,
        notify=notify,
    )
    record(
        "customer-ready",
        "Customer ready",
        ready.answered_by,
        f"{ready.upload_frequency} uploads",
        ready.sample_csv,
    )
    reg = Registration(
        customer=customer,
        mode="onboarding",
        mapping_link=ready.mapping_link,
        members_csv=ready.members_csv or None,
        watching=False,
    )
    register(reg)
    progress.mark(1, "done", f"{ready.upload_frequency}; sample `{ready.sample_csv}`")

    # 2. support request with the sample attached
    progress.mark(2, "working")
    sample_copy = fetch_sample(reg, ready.sample_csv, once_key(customer.key, f"sample-{ready.sample_csv}"))
    first_request = post_support_request(
        slack,
        sftp_support_request(
            customer, "please create the 3 files from the sample", ready.sample_csv, run_link()
        ),
        once_key(customer.key, "sftp-support-request-sample"),
        Path(sample_copy),
    )
    progress.mark(2, "done", first_request.permalink or "")

    # 3. the three files from the sample, in the account channel
    progress.mark(3, "working")
    sample = files_from_sample(reg, sample_copy, once_key(customer.key, f"shared-sample-{ready.sample_csv}"))
    progress.mark(3, "done", f"shared in {customer.slack_channel}")

    # 4. review email with the files; the customer confirms
    progress.mark(4, "waiting", "CSM reviews the email")
    out = Path(sample.out_dir)
    review = draft_sftp_review_email(
        customer, smtp.default_cc, [out / INVITES, out / UPDATES, out / DELETIONS], sample.summary
    )
    send_reviewed_email(customer, "sftp-review-email", review, smtp, wait)
    progress.mark(4, "waiting", "customer verifies the files")
    confirmed = ask(
        CustomerConfirmed,
        key="customer-confirmed",
        title=f"Has {customer.company_name} confirmed the three files?",
        description="Resume when the customer says the files look right.",
        wait=wait,
        notify=notify,
    )
    record(
        "customer-confirmed",
        "Customer confirmed the files",
        confirmed.confirmed_by,
        "confirmed",
        confirmed.notes,
    )
    progress.mark(4, "done")

    # 5. hub segments
    progress.mark(5, "working")
    segments = update_hub_segments(customer, load_mapping(ready.mapping_link), wait)
    progress.mark(5, "done", str(segments))

    # 6. support request for production
    progress.mark(6, "working")
    production_request = post_support_request(
        slack,
        sftp_support_request(customer, "please activate production processing", ready.sample_csv, run_link()),
        once_key(customer.key, "sftp-support-request-production"),
        Path(sample_copy),
    )
    progress.mark(6, "done", production_request.permalink or "")

    # 7. watch for the production upload (sftp-watch + process-upload resume this run)
    register(
        reg.model_copy(update={"mode": "production", "watching": True, "waiting_run_id": current_run_id()})
    )
    progress.mark(7, "waiting", "the customer uploads the production CSV")
    production = ask(
        ProductionUpload,
        key="production-upload",
        title=f"Waiting for {customer.company_name}'s production upload",
        description=(
            "sftp-watch resumes this run by itself once the production CSV is processed. Nothing to do here "
            "unless the customer needs a nudge."
        ),
        wait=wait,
        notify=notify,
    )
    register(reg.model_copy(update={"mode": "production", "watching": True, "waiting_run_id": None}))
    progress.mark(7, "done", f"`{production.upload}`")
    progress.mark(
        8,
        "done",
        f"{production.invites} invites, {production.updates} updates, {production.deletions} deletions",
    )

    # 9. the CSM applies the files
    progress.mark(9, "waiting", "CSM applies the files")
    hub = optional_block(TenKCHub)
    if hub is None:
        title = f"Upload {customer.company_name}'s files in the hub, then approve here"
        what = _checklist(production.files_dir, customer.hub_url)
    else:
        title = f"Apply {customer.company_name}'s files through the hub API?"
        what = (
            f"{production.invites} invites, {production.updates} updates ({production.deactivations} "
            f"deactivations), {production.deletions} removals from `{production.upload}`."
        )
    request_approval(key="apply-files", title=title, what=what, wait=wait, notify=notify)
    if hub is None:
        applied = {"mode": "checklist"}
    else:
        apply_key = once_key(customer.key, f"apply-{production.upload}")
        if gone := files_gone(production, apply_key):
            return Failed(message=gone)
        applied = apply_files(hub, customer.hub_url, production.files_dir, apply_key)
    progress.mark(9, "done", str(applied))
    return {"production_upload": production.upload, "applied": applied, "segments": segments}
