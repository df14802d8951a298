"""What both SFTP flows do with an HRIS file: the hub's members now, the three files, their summary
in Slack, and the signal the first production upload sends. `sftp-integration` uses it for the
sample (step 6), `process-upload` for every upload (steps 8 and 9)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from blocks import GoogleSheetsCredentials, SlackWorkspace, TenKCHub, load_block, optional_block
from tasks.approvals import WaitSettings, ask
from tasks.column_match import slack_column_problems
from tasks.contracts import MEMBER_EXPORT, numbered
from tasks.deletion_grace import grace_in_words, hold_deletions
from tasks.export_links import EXPORT_LINK_SHOWN, MemberExportReceived, member_export_link
from tasks.files import DELETIONS, INVITES, REJECTED, UPDATES, generate_files_task
from tasks.files_dir import files_dir
from tasks.gate_notices import Notify, current_run_id, run_link
from tasks.mapping import parse_mapping_link, read_mapping
from tasks.mapping_whatif import keep_inputs
from tasks.once import once_task
from tasks.records import SharedFiles
from tasks.registry import Registration
from tasks.sftp import original_name
from tasks.slack import Slack
from tasks.tabular import read_header
from tasks.templating import capped, render

COUNTS = ("invites", "updates", "deletions", "deactivations", "reactivations", "rejected_rows")


class ProductionUpload(BaseModel):
    """What the waiting sftp-integration run hears once the first production upload is decided."""

    upload: str = Field(description="The production file's name")
    outcome: str = Field(description="What the CSM decided at step 9, in words")
    invites: int = 0
    updates: int = 0
    deletions: int = 0
    deactivations: int = 0
    reactivations: int = 0
    rejected_rows: int = 0


def load_mapping(link: str):
    """The registration's mapping table: a Google Sheets link or key, or a file on the worker."""
    sheet = parse_mapping_link(link).sheet_key is not None
    return read_mapping(link, load_block(GoogleSheetsCredentials) if sheet else None)


def hub_member_export(reg: Registration, folder: Path) -> Path:
    """The hub's members as they are now, through the hub API."""
    hub = load_block(TenKCHub)
    return hub.get_client(reg.customer.hub_url).export_members(folder / "members.csv")


def generate_for(
    reg: Registration,
    upload: Path,
    out_dir: Path,
    scratch: Path,
    members: Path | None = None,
    claim: str | None = None,
):
    """The three files for one HRIS CSV, against the hub's members and the customer's mapping table;
    for a claimed upload (`claim`, process-upload) with the customer's deletion grace applied."""
    members = members or hub_member_export(reg, scratch)
    summary = generate_files_task(upload, members, load_mapping(reg.mapping_link), out_dir)
    return summary if claim is None else hold_deletions(reg, claim, out_dir, members, summary)


@once_task("generate-upload-files")
def generate_upload_files(
    reg: Registration, local: Path, members: Path | None, out_dir: Path, once_key: str
) -> dict:
    """The three files, once per upload: a re-executed run keeps the comparison it made first."""
    with tempfile.TemporaryDirectory(prefix="hris-upload-") as tmp:
        members = members or hub_member_export(reg, Path(tmp))
        summary = generate_for(reg, local, out_dir, Path(tmp), members, claim=local.name)
        keep_inputs(out_dir, local, members)  # for update-mapping's what-if
    return {**summary, "columns": read_header("HRIS upload", local)}  # the header, for "a column gone"


def review_files(out_dir: Path, summary: dict) -> list[Path]:
    """The files to share: the three of the runbook, plus rejected rows when there are any."""
    paths = [out_dir / name for name in (INVITES, UPDATES, DELETIONS)]
    return paths + ([out_dir / REJECTED] if summary["rejected_rows"] else [])


@once_task("share-files")
def share_files(
    slack: SlackWorkspace, channel: str, text: str, paths: list[Path], once_key: str
) -> SharedFiles:
    """Post the summary and the files in one thread, once per upload."""
    poster = Slack(slack)
    posted = poster.post(channel, text, once_key=once_key)
    names = []
    for path in paths:
        poster.share_file(channel, path, thread_ts=posted.ts, once_key=once_key)
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
        unmapped_shown=unmapped_in_words(summary["unmapped_values"]),
        status_column=summary.get("status_column", True),
        columns=slack_column_problems(summary),
        grace=grace_in_words(summary),
        **{k: summary[k] for k in COUNTS},
    )


def production_text(reg: Registration, upload: str, summary: dict) -> str:
    """Step 8's message in #monitoring-hris-files: the counts, who is on the account, where to apply."""
    customer = reg.customer
    return render(
        "slack/production_files.md.j2",
        summary=summary_text(reg, upload, summary),
        csm=customer.csm.name,
        implementation_manager=customer.implementation_manager.name,
        product_manager=customer.product_manager.name if customer.product_manager else "",
        run_url=run_link(),
    )


def current_members(reg: Registration, upload: str, wait: WaitSettings) -> Path | None:
    """None with a hub API (the export is taken when the files are made); else the export the CSM
    hands over, today, through a signed single-use page of the project's web app."""
    if optional_block(TenKCHub) is not None:
        return None
    folder = Path(upload).stem
    link = member_export_link(current_run_id(), reg.customer.key, folder, reg.customer.company_name)
    expected = files_dir() / reg.customer.key / folder
    problem = ""
    for attempt in range(1, 10_000):
        answer = ask(
            MemberExportReceived,
            key=MEMBER_EXPORT if attempt == 1 else numbered(MEMBER_EXPORT, attempt),
            title=f"Upload {reg.customer.company_name}'s current member export",
            description=(
                f"{problem}To compare `{original_name(upload)}` with the hub as it is today, export the "
                f"members in the hub (Members > Export) and upload that file here: {link}\n\n"
                "The link works once. This run goes on by itself when the file is in."
            ),
            wait=wait,
            notify=Notify(email=reg.customer.csm.email, channel=reg.customer.slack_channel),
            private={link: EXPORT_LINK_SHOWN},  # the CSM copies it from the form, nowhere else
        )
        export = Path(answer.export_path)
        if export.parent.resolve() == expected.resolve() and export.is_file():
            return export
        problem = "**Use the upload link below**; a path typed into the form is not used.\n\n"
    raise AssertionError("unreachable")


UNMAPPED_SHOWN = 10  # the Slack summary names this many unmapped values, then says how many more


def unmapped_in_words(unmapped: list[dict]) -> list[str]:
    """`Department: Sales Ops ×4`, most rows first (summary.json's order), the rest counted."""
    return capped([f"{u['field']}: {u['value']} ×{u['rows']}" for u in unmapped], UNMAPPED_SHOWN)
