"""`process-upload`: one HRIS upload -> potential invites, profile updates and deletions, shared in Slack.

Started by `sftp-watch` for each claimed upload (or by a person with a customer key and file name).
Runbook SFTP steps 3 and 8: the files go to the account channel during onboarding and to
#monitoring-hris-files in production. A tripped mass-deletion guard waits for a person first.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.flow_runs import resume_flow_run
from prefect.states import Failed
from prefect.variables import Variable
from pydantic import BaseModel

from blocks import GoogleSheetsCredentials, SftpServer, SlackWorkspace, TenKCHub, load_block, optional_block
from flows.approvals import Notify, WaitSettings, artifact_key, ends_on_rejection, request_approval
from tasks.files import DELETIONS, INVITES, REJECTED, UPDATES, generate_files_task
from tasks.mapping import read_mapping
from tasks.once import once_key, once_policy
from tasks.registry import Registration, register, registration
from tasks.sftp import archive, download, inbox_path, refuse
from tasks.slack import Slack
from tasks.tabular import InputError
from tasks.templating import render

COUNTS = ("invites", "updates", "deletions", "deactivations", "reactivations", "rejected_rows")


class SharedFiles(BaseModel):
    channel: str
    files: list[str]
    message_ts: str


def files_dir() -> Path:
    """Where generated files are kept for the CSM's step 9 (Variable `hris_files_dir`)."""
    from prefect.settings import PREFECT_HOME

    return Path(Variable.get("hris_files_dir", default=str(PREFECT_HOME.value() / "hris-files")))


def load_mapping(link: str):
    """The registration's mapping table: a Google Sheets link, or a file on the worker."""
    return read_mapping(link, load_block(GoogleSheetsCredentials) if link.startswith("http") else None)


def member_export(reg: Registration, folder: Path) -> Path:
    """The hub's current members: the hub API export when configured, else the CSM's latest export."""
    hub = optional_block(TenKCHub)
    if hub is not None:
        return hub.get_client(reg.customer.hub_url).export_members(folder / "members.csv")
    if not reg.members_csv:
        raise InputError(
            "member export", "members.csv", "no hub API and no member export supplied for this customer"
        )
    return Path(reg.members_csv)


def generate_for(reg: Registration, upload: Path, out_dir: Path, scratch: Path) -> dict:
    """The three files for one HRIS CSV, against the hub's members and the customer's mapping table."""
    return generate_files_task(upload, member_export(reg, scratch), load_mapping(reg.mapping_link), out_dir)


def review_files(out_dir: Path, summary: dict) -> list[Path]:
    """The files to share: the three of the runbook, plus rejected rows when there are any."""
    paths = [out_dir / name for name in (INVITES, UPDATES, DELETIONS)]
    return paths + ([out_dir / REJECTED] if summary["rejected_rows"] else [])


@task(name="share-files", cache_policy=once_policy(), persist_result=True)
def share_files(
    slack: SlackWorkspace, channel: str, text: str, paths: list[Path], once_key: str
) -> SharedFiles:
    """Post the summary and the files in one thread, once per upload."""
    poster = Slack(slack)
    posted = poster.post(channel, text)
    names = []
    for path in paths:
        poster.share_file(channel, path, thread_ts=posted.ts)
        names.append(path.name)
    return SharedFiles(channel=channel, files=names, message_ts=posted.ts)


def summary_text(reg: Registration, upload: str, summary: dict) -> str:
    """The Slack message that goes with the shared files: counts, never names."""
    return render(
        "slack/files_shared.md.j2",
        company=reg.customer.company_name,
        upload=upload,
        mode=reg.mode,
        unmapped=len(summary["unmapped_values"]),
        **{k: summary[k] for k in COUNTS},
    )


def _resume_waiting_run(reg: Registration, upload: str, out_dir: Path, summary: dict) -> None:
    if not reg.waiting_run_id:
        return
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(reg.waiting_run_id)
    details = run.state.state_details if run.state else None
    if run.state and run.state.is_paused() and details and details.pause_key == "production-upload":
        resume_flow_run(
            run.id,
            run_input={"upload": upload, "files_dir": str(out_dir), **{k: summary[k] for k in COUNTS}},
        )
        get_run_logger().info("Resumed the waiting sftp-integration run %s", run.id)
    register(reg.model_copy(update={"waiting_run_id": None, "mode": "production"}))


@flow(name="process-upload")
@ends_on_rejection
def process_upload(customer_key: str, upload: str, wait: WaitSettings | None = None) -> dict:
    """Download, validate and compare an upload with the hub's members; share the three files."""
    logger = get_run_logger()
    wait = wait or WaitSettings()
    reg = registration(customer_key)
    if reg is None:
        return Failed(message=f"{customer_key} is not registered for SFTP watching")
    server = load_block(SftpServer, reg.sftp_block)
    slack = load_block(SlackWorkspace)
    inbox = inbox_path(server.inbox_root, customer_key)
    out_dir = files_dir() / customer_key / Path(upload).stem

    with tempfile.TemporaryDirectory(prefix="hris-upload-") as tmp:
        local = Path(tmp) / upload
        with server.get_client() as sftp:
            try:
                download(sftp, f"{inbox}/processing/{upload}", local)
            except FileNotFoundError:
                return Failed(
                    message=f"{upload} is not in {inbox}/processing (already processed, or never claimed)"
                )
        try:
            summary = generate_files_task(
                local, member_export(reg, Path(tmp)), load_mapping(reg.mapping_link), out_dir
            )
        except InputError as exc:
            with server.get_client() as sftp:
                refuse(sftp, inbox, upload, from_dir="processing")
            Slack(slack).post(
                reg.customer.slack_channel if reg.mode == "onboarding" else slack.monitoring_channel,
                render(
                    "slack/upload_unreadable.md.j2",
                    upload=upload,
                    company=reg.customer.company_name,
                    problem=exc,
                ),
            )
            return Failed(message=str(exc))

    guard = summary["deletion_guard"]
    if guard["tripped"]:
        request_approval(
            key="mass-deletion",
            title=(
                f"{reg.customer.company_name}: {guard['deletions']} of {guard['members']} members "
                "would be deleted"
            ),
            what=(
                f"The upload `{upload}` would delete {guard['deletion_pct']}% of the hub's members, over the "
                f"{guard['max_deletion_pct']}% limit. A truncated or partial export looks like this. "
                "Approve only if the customer confirms these people left; reject to stop here "
                "(nothing is shared)."
            ),
            wait=wait,
            notify=Notify(email=reg.customer.csm.email, channel=slack.monitoring_channel),
        )

    channel = reg.customer.slack_channel if reg.mode == "onboarding" else slack.monitoring_channel
    shared = share_files(
        slack,
        channel,
        summary_text(reg, upload, summary),
        review_files(out_dir, summary),
        once_key(customer_key, f"shared-{upload}"),
    )
    create_table_artifact(
        key=artifact_key("upload", customer_key),
        table=[{"upload": upload, "channel": shared.channel, **{k: summary[k] for k in COUNTS}}],
        description=f"{reg.customer.company_name}: {upload}",
    )
    with server.get_client() as sftp:
        archived = archive(sftp, inbox, upload)
    logger.info("Shared %d file(s) in %s; archived as %s", len(shared.files), shared.channel, archived)
    _resume_waiting_run(reg, upload, out_dir, summary)
    return {
        "upload": upload,
        "channel": shared.channel,
        "files_dir": str(out_dir),
        **{k: summary[k] for k in COUNTS},
    }
