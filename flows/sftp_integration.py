"""Runbook "File-based implementation (SFTP)", steps 1–9, with a person approving at each gate."""

import itertools
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from prefect import flow
from prefect.input import RunInput
from pydantic import Field, field_validator

from blocks import SftpServer, SlackWorkspace, SmtpServer, load_block
from tasks.approvals import WaitSettings, ask, ends_on_rejection, record, wait_for_signal, wait_settings
from tasks.contracts import (
    CUSTOMER_CONFIRMED,
    CUSTOMER_READY,
    PRODUCTION_UPLOAD,
    SFTP_IMPLEMENTATION_EMAIL,
    SFTP_INTEGRATION,
    SFTP_REVIEW_EMAIL,
    numbered,
)
from tasks.customer import Customer
from tasks.emails import draft_sftp_implementation_email, draft_sftp_review_email, too_large_to_attach
from tasks.files import DELETIONS, INVITES, UPDATES
from tasks.files_dir import files_dir
from tasks.gate_notices import current_run_id, run_link
from tasks.naming import run_name
from tasks.once import already_done, once_key, once_task
from tasks.progress import Progress
from tasks.records import SampleFiles, SentEmail
from tasks.registry import Registration, register, registration
from tasks.review_links import DOWNLOAD_LINK_SHOWN, review_download_link
from tasks.sftp import archive, claim, download, inbox_path, missing_from_inbox, safe_file_name
from tasks.steps import (
    check_mapping_table,
    csm_notice,
    help_center_catalogue,
    send_reviewed_email,
    update_hub_segments,
)
from tasks.support import post_support_request, sftp_support_request
from tasks.uploads import (
    ProductionUpload,
    current_members,
    generate_for,
    review_files,
    share_files,
    summary_text,
)

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


class CustomerReady(RunInput):
    """What the customer confirmed after the implementation email (SFTP step 1)."""

    upload_frequency: Literal["weekly", "monthly"] = Field(description="How often they will upload")
    mapping_cadence: Literal["monthly", "quarterly"] = Field(
        default="monthly",
        description="How often they send updated values for the data mapping table (mapping-review asks)",
    )
    sftp_server_confirmed: bool = Field(description="The customer can reach the SFTP server and their inbox")

    @field_validator("sftp_server_confirmed")
    @classmethod
    def _server_confirmed(cls, confirmed: bool) -> bool:
        if not confirmed:
            raise ValueError("answer once the customer has confirmed they can reach the SFTP server")
        return confirmed

    sample_csv: str = Field(description="File name of the sample CSV they uploaded to their inbox")
    mapping_link: str = Field(description="The completed data mapping table (Google Sheets link)")
    answered_by: str = Field(min_length=1, description="Your name")

    @field_validator("sample_csv")
    @classmethod
    def _plain_file_name(cls, name: str) -> str:
        return safe_file_name(name.strip(), "sample CSV name")


class CustomerConfirmed(RunInput):
    """The customer reviewed the three files (SFTP step 4)."""

    confirmed_by: str = Field(min_length=1, description="Your name")
    notes: str = Field(default="", description="What the customer said")


@once_task("files-from-sample")
def files_from_sample(
    reg: Registration, sample_copy: str, members: Path | None, once_key: str
) -> SampleFiles:
    """SFTP step 3: the three files from the sample, shared in the customer's account channel."""
    sample = Path(sample_copy)
    out_dir = sample.parent / sample.stem
    with tempfile.TemporaryDirectory(prefix="hris-sample-") as tmp:
        summary = generate_for(reg, sample, out_dir, Path(tmp), members)
    slack = load_block(SlackWorkspace)
    text = summary_text(reg, sample.name.removeprefix("sample-"), summary)
    share_files.fn(slack, reg.customer.slack_channel, text, review_files(out_dir, summary), once_key)
    return SampleFiles(out_dir=str(out_dir), summary=summary)


@once_task("fetch-sample")
def fetch_sample(reg: Registration, sample: str, once_key: str) -> str:
    """Download the sample CSV (kept with the customer's files for the support request), then archive
    it on the server so the watcher never takes it for a production upload."""
    sample = safe_file_name(sample, "sample CSV name")
    server = load_block(SftpServer, reg.sftp_block)
    inbox = inbox_path(server.inbox_root, reg.customer.key)
    target = files_dir() / reg.customer.key / f"sample-{sample}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with server.get_client() as sftp:
        download(sftp, f"{inbox}/{sample}", target, server.max_upload_mb * 2**20)
        if claim(sftp, inbox, sample):
            archive(sftp, inbox, sample)
    return str(target)


def sample_key(customer: Customer, sample: str) -> str:
    """The once-key of fetching this sample (after which it is archived, no longer in the inbox)."""
    return once_key(customer.key, f"sample-{sample}")


def sample_problem(customer: Customer, sample: str) -> str | None:
    """Why the named sample cannot be fetched (not in the inbox: what is there), or None."""
    if already_done(sample_key(customer, sample)) is not None:
        return None  # fetched (and archived) by an earlier execution of this run
    server = load_block(SftpServer, Registration.model_fields["sftp_block"].default)
    with server.get_client() as sftp:
        return missing_from_inbox(sftp, inbox_path(server.inbox_root, customer.key), sample, customer.key)


def ask_customer_ready(customer: Customer, wait, notify) -> CustomerReady:
    """SFTP step 1's answers; a sample name that is not in the inbox is said and asked again."""
    problem = ""
    for attempt in itertools.count(1):
        ready = ask(
            CustomerReady,
            key=CUSTOMER_READY if attempt == 1 else numbered(CUSTOMER_READY, attempt),
            title=f"{customer.company_name}: upload frequency, SFTP server and sample CSV",
            description=(
                problem + "When the customer has confirmed the upload frequency and the SFTP server, and "
                f"uploaded a sample CSV to their inbox (`{customer.key}/`), fill this in."
            ),
            wait=wait,
            notify=notify,
        )
        missing = sample_problem(customer, ready.sample_csv)
        if missing is None:
            return ready
        problem = f"**{missing}.** Check the name with the customer, then answer again.\n\n---\n\n"
    raise AssertionError("unreachable")


def send_review_email(
    customer: Customer, smtp: SmtpServer, out: Path, summary: dict, wait: WaitSettings | None = None
) -> SentEmail:
    """SFTP step 4's email: the three files attached, or, when they are over the SMTP block's
    attachments limit once encoded, a signed download link in their place (the review form says so;
    Prefect's forms, artifacts and logs show DOWNLOAD_LINK_SHOWN, only the email carries the link)."""
    files = [out / INVITES, out / UPDATES, out / DELETIONS]
    why = too_large_to_attach(files, smtp.attachments_limit_mb)
    if why is None:
        review = draft_sftp_review_email(customer, smtp.default_cc, files, summary)
        return send_reviewed_email(customer, SFTP_REVIEW_EMAIL, review, smtp, wait)
    link = review_download_link(customer.key, files, smtp.download_link_days)
    expires = datetime.now(UTC) + timedelta(days=smtp.download_link_days)
    review = draft_sftp_review_email(customer, smtp.default_cc, files, summary, link, expires)
    note = (
        f"No files are attached: {why}. The email carries a download link instead, from the web app, "
        f"valid {smtp.download_link_days} days (until {expires:%d %B %Y}); this form shows "
        f"{DOWNLOAD_LINK_SHOWN} where it goes: keep that text in the body."
    )
    review = review.model_copy(update={"notes": [note]})
    return send_reviewed_email(
        customer, SFTP_REVIEW_EMAIL, review, smtp, wait, private={link: DOWNLOAD_LINK_SHOWN}
    )


@once_task("register-for-watching")
def register_once(reg: Registration, once_key: str) -> str:
    """Register once per run: a resumed run re-executes from the top and must not turn a customer
    already in production back into onboarding (uploads would go to the account channel)."""
    register(reg)
    return reg.mode


@once_task("start-production-watch")
def _watch_started(once_key: str) -> datetime:
    return datetime.now(UTC)


def registered_at(customer_key: str) -> datetime:
    """When production watching started, kept across re-executions: the overdue clock starts here."""
    return _watch_started(once_key(customer_key, "production-watch-started"))


@flow(name=SFTP_INTEGRATION, flow_run_name=run_name(SFTP_INTEGRATION))
@ends_on_rejection
def sftp_integration(customer: Customer) -> dict:
    """From the implementation email to the CSM applying the production files, each side effect once."""
    wait = wait_settings()
    progress = Progress(SFTP_INTEGRATION, customer.company_name, customer.key, STEPS)
    smtp, slack = load_block(SmtpServer), load_block(SlackWorkspace)
    catalogue = help_center_catalogue()
    help_url = catalogue.help_center_url
    notify = csm_notice(customer)

    # 1. implementation email, then the customer's answers
    progress.mark(1, "waiting", "CSM reviews the email")
    draft = draft_sftp_implementation_email(customer, catalogue, help_url, smtp.default_cc)
    send_reviewed_email(customer, SFTP_IMPLEMENTATION_EMAIL, draft, smtp, wait)
    progress.mark(1, "waiting", "customer: frequency, SFTP server, sample CSV")
    ready = ask_customer_ready(customer, wait, notify)
    record(
        CUSTOMER_READY,
        "Customer ready",
        ready.answered_by,
        f"{ready.upload_frequency} uploads, {ready.mapping_cadence} mapping reviews",
        ready.sample_csv,
    )
    mapping_link, table = check_mapping_table(customer, wait, ready.mapping_link, ready.answered_by)
    reg = Registration(
        customer=customer,
        mode="onboarding",
        mapping_link=mapping_link,
        upload_frequency=ready.upload_frequency,
        mapping_cadence=ready.mapping_cadence,
        watching=False,
    )
    register_once(reg, once_key(current_run_id(), "register-onboarding"))
    progress.mark(1, "done", f"{ready.upload_frequency}; sample `{ready.sample_csv}`")

    # 2. support request with the sample attached
    progress.mark(2, "working")
    sample_copy = fetch_sample(reg, ready.sample_csv, sample_key(customer, ready.sample_csv))
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
    members = current_members(reg, f"sample-{ready.sample_csv}", wait)
    sample = files_from_sample(
        reg, sample_copy, members, once_key(customer.key, f"shared-sample-{ready.sample_csv}")
    )
    progress.mark(3, "done", f"shared in {customer.slack_channel}")

    # 4. review email with the files; the customer confirms
    progress.mark(4, "waiting", "CSM reviews the email")
    send_review_email(customer, smtp, Path(sample.out_dir), sample.summary, wait)
    progress.mark(4, "waiting", "customer verifies the files")
    confirmed = ask(
        CustomerConfirmed,
        key=CUSTOMER_CONFIRMED,
        title=f"Has {customer.company_name} confirmed the three files?",
        description="Resume when the customer says the files look right.",
        wait=wait,
        notify=notify,
    )
    record(
        CUSTOMER_CONFIRMED,
        "Customer confirmed the files",
        confirmed.confirmed_by,
        "confirmed",
        confirmed.notes,
    )
    progress.mark(4, "done")

    # 5. hub segments
    progress.mark(5, "working")
    segments = update_hub_segments(customer, table, wait)
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

    # 7. watch for the production upload (sftp-watch claims it; process-upload does steps 8 and 9
    #    for it, as for every later upload, and then resumes this run)
    stored = registration(customer.key) or reg  # with `customer set-…` changes since step 1
    production_reg = stored.model_copy(
        update={
            "mode": "production",
            "watching": True,
            "waiting_run_id": current_run_id(),
            "registered_at": registered_at(customer.key),
        }
    )
    register_once(production_reg, once_key(current_run_id(), "register-production"))
    progress.mark(7, "waiting", "the customer uploads the production CSV")
    production = wait_for_signal(
        ProductionUpload,
        key=PRODUCTION_UPLOAD,
        title=f"Waiting for {customer.company_name}'s production upload",
        description=(
            "sftp-watch and process-upload resume this run by themselves once the first production CSV "
            "is shared and the CSM has decided on applying it. Nothing to do here unless the customer "
            "needs a nudge."
        ),
        notify=notify,
    )
    progress.mark(7, "done", f"`{production.upload}`")
    progress.mark(
        8,
        "done",
        f"{production.invites} invites, {production.updates} updates, {production.deletions} deletions",
    )
    progress.mark(9, "done", production.outcome)
    return {"production_upload": production.upload, "applied": production.outcome, "segments": str(segments)}
