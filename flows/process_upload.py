"""`process-upload`: one claimed HRIS upload, from the SFTP inbox to the CSM's apply decision.

Runbook SFTP steps 8 and 9, for every upload, for as long as the customer uploads. An upload is
its claim (the claimed name starts with the claim's UTC time) plus the SHA-256 of its bytes: the
same bytes again are a duplicate, reported once and never applied twice; the same name with new
bytes is a new upload. Uploads of one customer are compared and applied oldest first, each against
the hub's members as they are when its turn comes.
"""

from __future__ import annotations

import hashlib
import itertools
import tempfile
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.input import RunInput
from prefect.states import Cancelled, Failed
from pydantic import Field

from blocks import SftpServer, SlackWorkspace, TenKCHub, load_block, optional_block
from tasks.alerts import alert_once
from tasks.approval_notices import files_details
from tasks.approvals import (
    Approval,
    Notify,
    Rejected,
    WaitSettings,
    ask,
    current_run_id,
    decide,
    request_approval,
    run_link,
    send_signal,
    wait_settings,
)
from tasks.column_match import column_problems, findings, slack_column_problems
from tasks.contracts import (
    APPLY_FILES,
    ARCHIVE,
    MASS_DELETION,
    PROCESS_UPLOAD,
    PROCESSING,
    PRODUCTION_UPLOAD,
    QUEUED,
    REFUSED,
    inbox_folder,
    numbered,
    upload_artifact,
)
from tasks.deletion_grace import grace_ends
from tasks.files import DELETIONS, HUB_API_DIR, INVITES, UPDATES, hub_file
from tasks.files_dir import files_dir
from tasks.mapping_whatif import keep_inputs
from tasks.naming import upload_run_name
from tasks.once import already_done, once_key, once_task
from tasks.receipts import Receipt, receipt_for, receipt_key, send_receipt
from tasks.records import Received, ShownFiles
from tasks.registry import Registration, last_applied, note_applied, registration, update_registration
from tasks.sftp import (
    DownloadRefused,
    UnsafeName,
    archive,
    download,
    inbox_path,
    original_name,
    refuse,
    safe_file_name,
)
from tasks.slack import Slack
from tasks.tabular import InputError, read_header
from tasks.templating import SlackText, render
from tasks.upload_history import (
    APPLIED,
    CARRIED,
    PENDING,
    HistoryRule,
    customer_uploads,
    decided_before,
    history_details,
    history_markdown,
    history_rule,
    unusual,
    upload_table,
)
from tasks.upload_history import (
    REJECTED as DECIDED_REJECTED,
)
from tasks.upload_queue import claims_in_processing, listed_claims, older_claims, resume_next_upload
from tasks.uploads import (
    COUNTS,
    ProductionUpload,
    current_members,
    generate_for,
    hub_member_export,
    review_files,
    share_files,
    summary_text,
)

HUB_PATHS = {
    INVITES: "Invite Members > Bulk Invites > Upload member profile data",
    UPDATES: "Members > Manage Members > Actions > Edit members",
    DELETIONS: "Members > Manage Members > Actions > Remove members from Hub",
}


class FilesPurged(Exception):
    """Step 9 came after purge-old-files deleted the upload's files: the run fails with this line."""


class GoAhead(RunInput):
    """Sent by the run of the older upload when it is done (or by the watcher); not for people."""

    go: bool = Field(default=True, title="Go ahead", description="Filled in automatically")


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


def _superseded(reg: Registration, slack: SlackWorkspace, upload: str, newest: str) -> dict:
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
    _finish(reg, upload, None, f"refused: superseded by {newest}", to=REFUSED)
    return {"upload": original_name(upload), "superseded_by": newest}


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


@once_task("apply-files-to-hub")
def apply_files(hub: TenKCHub, hub_url: str, folder: str, once_key: str) -> dict:
    """The three uploads as one step, as code before 2026-12 did: its records still mean "all done"."""
    client = hub.get_client(hub_url)
    return {
        "invited": client.upload_invites(hub_file(folder, INVITES), once_key),
        "updated": client.update_members(hub_file(folder, UPDATES), once_key),
        "removed": client.remove_members(hub_file(folder, DELETIONS), once_key),
    }


# The unescaped copies: the hub gets values as they are, not as a spreadsheet shows them. Each
# upload is its own once-step, so a retry after a failed update does not invite everyone again.
# `apply_key` (the upload's apply step) keys the hub's Idempotency-Key, as the combined step did.
@once_task("invite-members")
def invite_members(hub: TenKCHub, hub_url: str, folder: str, apply_key: str, once_key: str) -> int:
    """SFTP step 9, first upload: the potential invites, once per upload."""
    return hub.get_client(hub_url).upload_invites(hub_file(folder, INVITES), apply_key)


@once_task("update-members")
def update_members(hub: TenKCHub, hub_url: str, folder: str, apply_key: str, once_key: str) -> int:
    """SFTP step 9, second upload: the profile updates, once per upload."""
    return hub.get_client(hub_url).update_members(hub_file(folder, UPDATES), apply_key)


@once_task("remove-members")
def remove_members(hub: TenKCHub, hub_url: str, folder: str, apply_key: str, once_key: str) -> int:
    """SFTP step 9, last upload: the removals, once per upload."""
    return hub.get_client(hub_url).remove_members(hub_file(folder, DELETIONS), apply_key)


APPLY_STEPS = (("invited", invite_members), ("updated", update_members), ("removed", remove_members))


def applied_record(apply_key: str) -> dict | None:
    """What step 9 applied through the API, when all of it is done: the combined record of older
    code, or the three records of today's; None while anything is left."""
    if (combined := already_done(apply_key)) is not None:
        return combined
    parts = {name: already_done(f"{apply_key}--{name}") for name, _ in APPLY_STEPS}
    return None if None in parts.values() else parts


def apply_through_hub(hub: TenKCHub, hub_url: str, folder: str, apply_key: str) -> dict:
    """Invites, updates, then removals, each once: a retry does only what is left."""
    if (combined := already_done(apply_key)) is not None:
        return combined
    return {name: step(hub, hub_url, folder, apply_key, f"{apply_key}--{name}") for name, step in APPLY_STEPS}


def alert_missing_columns(reg: Registration, slack: SlackWorkspace, upload: str, summary: dict) -> None:
    """One alert in #monitoring-hris-files per customer and missing mapped column, whichever upload
    shows it first (a later upload without the column says it in its summary and gate, not here)."""
    fields = [f["field"] for f in findings(summary)]
    for field, line in zip(fields, slack_column_problems(summary), strict=True):
        text = render(
            "slack/missing_column.md.j2", company=reg.customer.company_name, upload=upload, problem=line
        )
        try:
            alert_once(
                Slack(slack), slack.monitoring_channel, text, once_key(reg.customer.key, f"missing-{field}")
            )
        except Exception as exc:  # the summary and the gate still say it; the next upload alerts again
            get_run_logger().warning("Missing-column alert failed: %s: %s", type(exc).__name__, exc)


@once_task("report-duplicate")
def report_duplicate(slack: SlackWorkspace, text: str, once_key: str) -> str:
    """One notice in #monitoring-hris-files per duplicate claim."""
    return Slack(slack).post(slack.monitoring_channel, text, once_key=once_key).ts


def files_gone(folder: str, upload: str, apply_key: str) -> str | None:
    """Why step 9 cannot apply the files through the API: purge-old-files deleted them first."""
    if Path(folder).is_dir() or applied_record(apply_key) is not None:
        return None
    return (
        f"The files from {upload} are no longer on the worker (older than "
        "hris_files_retention_days): apply the copies in the Slack thread in the hub by hand"
    )


def checklist(folder: Path, hub_url: str) -> str:
    """The runbook's manual step 9: which file goes where in the hub's admin pages."""
    lines = [f"In the hub ({hub_url}), upload each file (they are also in the Slack thread):\n"]
    for name, path in HUB_PATHS.items():
        lines.append(f"- **{name}**: {path}. File: `{folder / name}`")
    return "\n".join(lines) + "\n"


def wait_for_older_uploads(reg: Registration, upload: str, wait: WaitSettings) -> None:
    """Never compare or apply a newer upload before an older one of the same customer is decided."""
    for turn in range(1, 10_000):
        older = older_claims(claims_in_processing(reg), upload)
        if not older:
            return
        ask(
            GoAhead,
            key=numbered(QUEUED, turn),
            title=f"{reg.customer.company_name}: `{original_name(upload)}` waits for an older upload",
            description=(
                f"{len(older)} older upload(s) of this customer are still in processing/ "
                f"(oldest: `{older[0]}`). This run goes on by itself once they are decided or refused."
            ),
            wait=wait,
        )


@once_task("record-upload-decision")
def remember_outcome(outcome: str, once_key: str) -> str:
    """Step 9's outcome for one upload, kept so a re-run of the upload never asks again."""
    return outcome


BOUND_FILES = (INVITES, UPDATES, DELETIONS)


def file_hashes(out_dir: Path) -> dict[str, str]:
    """The SHA-256 of the three files and of their hub-API copies, by path in the files folder."""
    found = {}
    for name in BOUND_FILES:
        for path in (name, f"{HUB_API_DIR}/{name}"):
            if (out_dir / path).is_file():
                with (out_dir / path).open("rb") as handle:
                    found[path] = hashlib.file_digest(handle, "sha256").hexdigest()
    return found


@once_task("bind-shown-files")
def bind_shown_files(out_dir: str, once_key: str) -> ShownFiles:
    """The files as an apply gate shows them, hashed once: what an approval binds."""
    return ShownFiles(sha256=file_hashes(Path(out_dir)))


def changed_files(out_dir: Path, shown: ShownFiles) -> list[str]:
    """The files whose bytes are not the ones the gate showed (changed, missing, or new)."""
    now = file_hashes(out_dir)
    return [path for path in sorted(set(shown.sha256) | set(now)) if shown.sha256.get(path) != now.get(path)]


def bound_line(shown: ShownFiles) -> str:
    """The form's line naming what an approval binds (the shown files' SHA-256, shortened)."""
    files = ", ".join(f"`{name}` {shown.sha256[name][:12]}…" for name in BOUND_FILES if name in shown.sha256)
    return f"Approving binds these files (SHA-256): {files}. Changed files are not applied.\n"


def hashes_table(shown: ShownFiles) -> str:
    """The decision artifact's record of the files approved: every SHA-256, in full."""
    rows = "".join(f"| {path} | {digest} |\n" for path, digest in sorted(shown.sha256.items()))
    return f"Files approved (SHA-256):\n\n| file | SHA-256 |\n|---|---|\n{rows}"


def joined(*parts: str) -> SlackText:
    """Slack texts one after the other, each on its own lines (empty ones left out)."""
    return SlackText("\n".join(part for part in parts if part))


def publish_upload(
    reg: Registration, upload: str, summary: dict, channel: str, decision: str = PENDING, by: str = ""
) -> None:
    """The customer's `upload-<key>` table for this upload, carrying its last earlier uploads: the
    board charts them from this one table, the gates list it."""
    name = original_name(upload)
    earlier = [u for u in customer_uploads(reg.customer.key) if u.claimed != upload][:CARRIED]
    create_table_artifact(
        key=upload_artifact(reg.customer.key),
        table=upload_table(name, upload, channel, summary, decision, by, earlier),
        description=f"{reg.customer.company_name}: {name}",
    )


def apply_step(
    reg: Registration,
    upload: str,
    out_dir: Path,
    received: Received,
    summary: dict,
    wait,
    channel: str = "",
    history: tuple[str, str] = ("", ""),
) -> str:
    """Runbook SFTP step 9 for this upload, decided once: the CSM applies the files (API or
    checklist); returns what happened, in words. `history`: the customer's last decided uploads
    (markdown for the form, Slack text for the notice)."""
    decided_key = once_key(reg.customer.key, f"decided-{upload}-{received.sha256[:16]}")
    if (previous := already_done(decided_key)) is not None:
        return previous
    receipt = receipt_for(reg, original_name(upload), summary, out_dir)  # reviewed at the same gate
    outcome, answer = _apply(reg, upload, out_dir, received, summary, wait, history, receipt)
    send_receipt(reg, receipt_key(reg, upload, received.sha256), receipt, answer, wait)
    publish_upload(reg, upload, summary, channel, APPLIED, answer.approver)
    return remember_outcome(outcome, decided_key)


def _apply(
    reg: Registration,
    upload: str,
    out_dir: Path,
    received: Received,
    summary: dict,
    wait,
    history: tuple[str, str],
    receipt: Receipt | None = None,
) -> tuple[str, Approval]:
    customer = reg.customer
    form, shown_receipt = (Approval, "") if receipt is None else (receipt.form, f"\n{receipt.markdown}")
    notify = Notify(email=customer.csm.email, channel=customer.slack_channel)
    hub = optional_block(TenKCHub)
    checks = "".join(f"**Check:** {line}\n\n" for line in column_problems(summary))
    counts = checks + (
        f"{summary['invites']} invites, {summary['updates']} updates ({summary['deactivations']} "
        f"deactivations), {summary['deletions']} removals from `{original_name(upload)}`"
    )
    shown_history, slack_history = history
    receipt_line = receipt.slack if receipt else ""
    details = joined(files_details(original_name(upload), summary), SlackText(slack_history), receipt_line)
    bind_step = f"shown-{upload}-{received.sha256[:16]}"
    if hub is None:
        title = f"Upload {customer.company_name}'s files in the hub, then approve here"
        shown = bind_shown_files(str(out_dir), once_key(customer.key, bind_step))
        what = checklist(out_dir, customer.hub_url) + f"\n{counts}.\n\n{bound_line(shown)}\n{shown_history}"
        answer = ask(
            form,
            key=APPLY_FILES,
            title=title,
            description=what + shown_receipt,
            wait=wait,
            notify=notify,
            details=details,
        )
        decide(APPLY_FILES, title, answer, hashes_table(shown))
        return "applied by hand in the hub (checklist)", answer
    title = f"Apply {customer.company_name}'s files through the hub API?"
    apply_key = once_key(customer.key, f"apply-{upload}-{received.sha256[:16]}")
    problem, slack_problem = "", ""
    for attempt in itertools.count(1):
        key = APPLY_FILES if attempt == 1 else numbered(APPLY_FILES, attempt)
        step = bind_step if attempt == 1 else f"{bind_step}-{attempt}"
        shown = bind_shown_files(str(out_dir), once_key(customer.key, step))
        answer = ask(
            form,
            key=key,
            title=title,
            description=f"{problem}{counts}.\n\n{bound_line(shown)}\n{shown_history}{shown_receipt}",
            wait=wait,
            notify=notify,
            details=joined(slack_problem, details),
        )
        decide(key, title, answer, hashes_table(shown))
        if gone := files_gone(str(out_dir), original_name(upload), apply_key):
            raise FilesPurged(gone)
        if applied_record(apply_key) is not None or not (changed := changed_files(out_dir, shown)):
            break
        names = ", ".join(changed)
        line = (
            f"Not applied: {names} changed on the worker after {answer.approver} approved them "
            "(regenerated or edited): check the files and approve again"
        )
        get_run_logger().warning(line)
        problem = f"**{line}.**\n\n"
        slack_problem = render("slack/files_changed.md.j2", files=names, approver=answer.approver)
    applied = apply_through_hub(hub, customer.hub_url, str(out_dir), apply_key)
    outcome = (
        f"applied through the hub API: {applied['invited']} invited, {applied['updated']} updated, "
        f"{applied['removed']} removed"
    )
    return outcome, answer


def _resume_onboarding_run(reg: Registration, upload: str, summary: dict | None, outcome: str) -> None:
    """The first production upload also finishes the customer's waiting sftp-integration run."""
    current = registration(reg.customer.key)
    if current is None or not current.waiting_run_id:
        return
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(current.waiting_run_id)
    if run.state and not run.state.is_final():
        counts = {k: (summary or {}).get(k, 0) for k in COUNTS}
        value = ProductionUpload(upload=original_name(upload), outcome=outcome, **counts)
        send_signal(run.id, PRODUCTION_UPLOAD, value)
        get_run_logger().info("Resumed the waiting sftp-integration run %s", run.id)
    update_registration(reg.customer.key, waiting_run_id=None, mode="production")


def _finish(reg: Registration, upload: str, summary: dict | None, outcome: str, to: str = ARCHIVE) -> None:
    """The upload is decided: move it out of processing/, tell the onboarding run, let the next go."""
    server = load_block(SftpServer, reg.sftp_block)
    inbox = inbox_path(server.inbox_root, reg.customer.key)
    with server.get_client() as sftp:
        moved = archive(sftp, inbox, upload) if to == ARCHIVE else refuse(sftp, inbox, upload, PROCESSING)
        in_processing = listed_claims(sftp, inbox)
    get_run_logger().info("Upload %s: %s; moved to %s", upload, outcome, moved or "(already moved)")
    if outcome.startswith(APPLIED):
        note_applied(reg.customer.key, upload)
    _resume_onboarding_run(reg, upload, summary, outcome)
    if resume_next_upload(reg.customer.key, in_processing, current_run_id()):
        get_run_logger().info("Started the next queued upload of %s", reg.customer.key)


def deletion_rules(name: str, guard: dict, rule: HistoryRule | None) -> str:
    """Which rule of the mass-deletion guard tripped, and why, for the gate's form."""
    lines = []
    if guard["tripped"]:
        lines.append(
            f"**Flat rule:** the upload `{name}` would delete {guard['deletion_pct']}% of the hub's members "
            f"({guard['deletions']} of {guard['members']}), over the {guard['max_deletion_pct']}% limit and "
            "more than 10. A truncated or partial export looks like this.\n"
        )
    if rule is not None and rule.tripped:
        lines.append(
            f"**This customer's history:** the upload `{name}` would delete {rule.deletions} members, above "
            f"max(10, 5 × {rule.median:g}) = {rule.limit:g}: the median of their last {rule.applied} applied "
            f"upload(s) is {rule.median:g}.\n"
        )
    lines.append(
        "Approve only if the customer confirms these people left; reject to stop here (nothing is shared).\n"
    )
    return "\n".join(lines)


def rule_details(rule: HistoryRule | None) -> str:
    """The Slack notice's line for the history rule, when it tripped (the flat rule has its own)."""
    if rule is None or not rule.tripped:
        return ""
    return render(
        "slack/history_check.md.j2",
        kind="rule",
        deletions=rule.deletions,
        median=f"{rule.median:g}",
        limit=f"{rule.limit:g}",
        applied=rule.applied,
    ).strip()


@flow(name=PROCESS_UPLOAD, flow_run_name=upload_run_name)
def process_upload(customer_key: str, upload: str) -> dict:
    """Steps 8 and 9 for one claimed upload: compare with the hub's members, share, apply."""
    wait = wait_settings()
    try:
        safe_file_name(upload, "upload")
    except UnsafeName as exc:
        return Failed(message=str(exc))
    reg = registration(customer_key)
    if reg is None:
        return Failed(message=f"{customer_key} is not registered for SFTP watching")
    slack = load_block(SlackWorkspace)
    customer = reg.customer
    name = original_name(upload)
    channel = customer.slack_channel if reg.mode == "onboarding" else slack.monitoring_channel
    incoming = files_dir() / customer_key / ".incoming" / upload
    out_dir = files_dir() / customer_key / Path(upload).stem

    try:
        received = receive_upload(reg, upload, incoming, once_key(customer_key, f"received-{upload}"))
    except FileNotFoundError:
        return Failed(
            message=f"{upload} is not in {customer_key}/processing (already handled, or never claimed)"
        )
    except DownloadRefused as exc:  # a link or an oversized file: refused/, its reason in Slack
        Slack(slack).post(
            channel,
            render("slack/upload_unreadable.md.j2", upload=name, company=customer.company_name, problem=exc),
        )
        _finish(reg, upload, None, f"refused: {exc}", to=REFUSED)
        return Failed(message=str(exc))

    wait_for_older_uploads(reg, upload, wait)  # older claims decided: their outcomes are known

    # The same bytes as an earlier applied upload: reported once, never applied twice.
    first = applied_copy(customer_key, upload, received)
    if first is not None and not grace_ends(reg, upload, received.sha256):
        text = render("slack/upload_duplicate.md.j2", company=customer.company_name, upload=name, first=first)
        report_duplicate(slack, text, once_key(customer_key, f"duplicate-{upload}"))
        _finish(reg, upload, None, f"duplicate of {first}: not applied again")
        return {"upload": name, "duplicate_of": first}
    newest = last_applied(customer_key)
    if newest is not None and newest > upload and upload in claims_in_processing(reg):
        return _superseded(reg, slack, upload, newest)

    stage = "wait"
    try:
        files_key = once_key(customer_key, f"files-{upload}-{received.sha256[:16]}")
        made = already_done(files_key) is not None  # a re-dispatched upload keeps its first files
        members = None if made else current_members(reg, upload, wait)  # ask only when it is used
        if not incoming.exists() and not made:
            fetch_claimed(reg, upload, incoming)
        try:
            summary = generate_upload_files(reg, incoming, members, out_dir, files_key)
        except InputError as exc:
            Slack(slack).post(
                channel,
                render(
                    "slack/upload_unreadable.md.j2", upload=name, company=customer.company_name, problem=exc
                ),
            )
            _finish(reg, upload, None, f"refused: {exc}", to=REFUSED)
            return Failed(message=str(exc))
        finally:
            incoming.unlink(missing_ok=True)

        # The customer's last decided uploads (one bounded read): shown at both gates, and the
        # mass-deletion guard's second rule.
        history = decided_before(customer_uploads(customer_key), upload)
        unusual_now = unusual(summary, history)
        shown_history = (history_markdown(history, unusual_now), history_details(history, unusual_now))
        guard, rule = summary["deletion_guard"], history_rule(summary["deletions"], history)
        if guard["tripped"] or (rule is not None and rule.tripped):
            stage = MASS_DELETION
            request_approval(
                key=MASS_DELETION,
                title=(
                    f"{customer.company_name}: {guard['deletions']} of {guard['members']} members "
                    "would be deleted"
                ),
                what=deletion_rules(name, guard, rule) + "\n" + shown_history[0],
                wait=wait,
                notify=Notify(email=customer.csm.email, channel=slack.monitoring_channel),
                details=joined(files_details(name, summary), rule_details(rule), shown_history[1]),
            )

        stage = "share"
        alert_missing_columns(reg, slack, name, summary)

        # 8. the files, shared once per upload
        text = (
            summary_text(reg, name, summary)
            if reg.mode == "onboarding"
            else production_text(reg, name, summary)
        )
        shared = share_files(
            slack,
            channel,
            text,
            review_files(out_dir, summary),
            once_key(customer_key, f"shared-{upload}-{received.sha256[:16]}"),
        )
        publish_upload(reg, upload, summary, shared.channel)

        # 9. the CSM applies them
        outcome = apply_step(reg, upload, out_dir, received, summary, wait, shared.channel, shown_history)
    except FilesPurged as gone:
        return Failed(message=str(gone))
    except Rejected as rejected:
        get_run_logger().warning("Stopping: %s", rejected)
        # A refused mass deletion leaves the upload in refused/ (nothing was shared); a refused apply
        # is a decision on a shared upload, archived like any other.
        to = REFUSED if stage == MASS_DELETION else ARCHIVE
        channel_used = "" if stage == MASS_DELETION else shared.channel
        publish_upload(reg, upload, summary, channel_used, DECIDED_REJECTED, rejected.approver)
        _finish(reg, upload, None, f"rejected by {rejected.approver}: {rejected.reason}", to=to)
        return Cancelled(message=str(rejected))
    _finish(reg, upload, summary, outcome)
    return {
        "upload": name,
        "channel": shared.channel,
        "files_dir": str(out_dir),
        "outcome": outcome,
        **{k: summary[k] for k in COUNTS},
    }
