"""`process-upload`: one claimed HRIS upload, from the SFTP inbox to the CSM's apply decision.

Runbook SFTP steps 8 and 9, for every upload, for as long as the customer uploads. An upload is
its claim (the claimed name starts with the claim's UTC time) plus the SHA-256 of its bytes: the
same bytes again are a duplicate, reported once and never applied twice; the same name with new
bytes is a new upload. Uploads of one customer are compared and applied oldest first, each against
the hub's members as they are when its turn comes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import Cancelled, Failed, State

from blocks import SlackWorkspace, TenKCHub, load_block, optional_block
from tasks.alerts import alert_once
from tasks.approval_notices import files_details
from tasks.approvals import (
    Approval,
    Rejected,
    WaitSettings,
    ask,
    decide,
    request_approval,
    wait_settings,
)
from tasks.column_match import column_problems, findings, slack_column_problems
from tasks.contracts import APPLY_FILES, ARCHIVE, MASS_DELETION, PROCESS_UPLOAD, REFUSED, numbered
from tasks.files_dir import files_dir
from tasks.gate_notices import Notify
from tasks.hub_apply import applied_record, apply_through_hub, checklist, files_gone
from tasks.naming import upload_run_name
from tasks.once import already_done, once_key, once_task
from tasks.receipts import Receipt, receipt_for, receipt_key, send_receipt
from tasks.records import Received, SharedFiles, ShownFiles
from tasks.registry import Registration, registration
from tasks.sftp import DownloadRefused, UnsafeName, original_name, safe_file_name
from tasks.slack import Slack
from tasks.tabular import InputError
from tasks.templating import SlackText, render
from tasks.upload_finish import finish_upload
from tasks.upload_gates import (
    bind_shown_files,
    bound_line,
    changed_files,
    deletion_rules,
    hashes_table,
    joined,
    publish_upload,
    rule_details,
)
from tasks.upload_history import (
    APPLIED,
    customer_uploads,
    decided_before,
    history_details,
    history_markdown,
    history_rule,
    unusual,
)
from tasks.upload_history import (
    REJECTED as DECIDED_REJECTED,
)
from tasks.upload_queue import wait_for_older_uploads
from tasks.upload_receive import duplicate_or_superseded, fetch_claimed, receive_upload
from tasks.uploads import (
    COUNTS,
    current_members,
    generate_upload_files,
    production_text,
    review_files,
    share_files,
    summary_text,
)


class FilesPurged(Exception):
    """Step 9 came after purge-old-files deleted the upload's files: the run fails with this line."""


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


@once_task("record-upload-decision")
def remember_outcome(outcome: str, once_key: str) -> str:
    """Step 9's outcome for one upload, kept so a re-run of the upload never asks again."""
    return outcome


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


@dataclass(frozen=True)
class ApplyGate:
    """What the apply gate shows and asks, whichever way the files are applied."""

    form: type[Approval]
    wait: WaitSettings
    notify: Notify
    counts: str  # the column checks and the counts
    history: str  # the customer's last decided uploads, for the form
    receipt: str  # the customer's receipt, for the form ("" without one)
    details: SlackText  # the Slack notice's lines
    bind_step: str  # the once-step binding the files shown

    def description(self, shown: ShownFiles, before: str = "") -> str:
        """The form's text: `before` (the checklist, or why the files were not applied), then the rest."""
        return f"{before}{self.counts}.\n\n{bound_line(shown)}\n{self.history}{self.receipt}"


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
    """The apply gate: the CSM applies the files by hand (no hub block) or approves the hub API."""
    customer = reg.customer
    checks = "".join(f"**Check:** {line}\n\n" for line in column_problems(summary))
    counts = checks + (
        f"{summary['invites']} invites, {summary['updates']} updates ({summary['deactivations']} "
        f"deactivations), {summary['deletions']} removals from `{original_name(upload)}`"
    )
    shown_history, slack_history = history
    receipt_line = receipt.slack if receipt else ""
    gate = ApplyGate(
        form=Approval if receipt is None else receipt.form,
        wait=wait,
        notify=Notify(email=customer.csm.email, channel=customer.slack_channel),
        counts=counts,
        history=shown_history,
        receipt="" if receipt is None else f"\n{receipt.markdown}",
        details=joined(files_details(original_name(upload), summary), SlackText(slack_history), receipt_line),
        bind_step=f"shown-{upload}-{received.sha256[:16]}",
    )
    hub = optional_block(TenKCHub)
    if hub is None:
        return _apply_by_hand(reg, out_dir, gate)
    return _apply_through_api(reg, hub, upload, out_dir, received, gate)


def _apply_by_hand(reg: Registration, out_dir: Path, gate: ApplyGate) -> tuple[str, Approval]:
    """No hub block: the CSM uploads the files in the hub from a checklist, then approves."""
    customer = reg.customer
    title = f"Upload {customer.company_name}'s files in the hub, then approve here"
    shown = bind_shown_files(str(out_dir), once_key(customer.key, gate.bind_step))
    answer = ask(
        gate.form,
        key=APPLY_FILES,
        title=title,
        description=gate.description(shown, checklist(out_dir, customer.hub_url) + "\n"),
        wait=gate.wait,
        notify=gate.notify,
        details=gate.details,
    )
    decide(APPLY_FILES, title, answer, hashes_table(shown))
    return "applied by hand in the hub (checklist)", answer


def _apply_through_api(
    reg: Registration, hub: TenKCHub, upload: str, out_dir: Path, received: Received, gate: ApplyGate
) -> tuple[str, Approval]:
    """The CSM approves the files the gate showed; the hub API applies them, unless one changed since
    (then the gate is asked again)."""
    customer = reg.customer
    title = f"Apply {customer.company_name}'s files through the hub API?"
    apply_key = once_key(customer.key, f"apply-{upload}-{received.sha256[:16]}")
    problem, slack_problem = "", ""
    for attempt in itertools.count(1):
        key = APPLY_FILES if attempt == 1 else numbered(APPLY_FILES, attempt)
        step = gate.bind_step if attempt == 1 else f"{gate.bind_step}-{attempt}"
        shown = bind_shown_files(str(out_dir), once_key(customer.key, step))
        answer = ask(
            gate.form,
            key=key,
            title=title,
            description=gate.description(shown, problem),
            wait=gate.wait,
            notify=gate.notify,
            details=joined(slack_problem, gate.details),
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


def _unreadable(
    reg: Registration, slack: SlackWorkspace, channel: str, upload: str, problem: Exception
) -> State:
    """An upload that cannot be read (a link, oversized, not a CSV): refused/, its reason in Slack."""
    text = render(
        "slack/upload_unreadable.md.j2",
        upload=original_name(upload),
        company=reg.customer.company_name,
        problem=problem,
    )
    Slack(slack).post(channel, text)
    finish_upload(reg, upload, None, f"refused: {problem}", to=REFUSED)
    return Failed(message=str(problem))


def _history_and_guard(
    reg: Registration, slack: SlackWorkspace, upload: str, summary: dict, wait: WaitSettings
) -> tuple[str, str]:
    """The customer's last decided uploads (one bounded read), shown at both gates (markdown for the
    form, Slack text for the notice); when the mass-deletion guard trips (the flat rule or this
    history's), the CSM decides first."""
    customer, name = reg.customer, original_name(upload)
    history = decided_before(customer_uploads(customer.key), upload)
    unusual_now = unusual(summary, history)
    shown_history = (history_markdown(history, unusual_now), history_details(history, unusual_now))
    guard, rule = summary["deletion_guard"], history_rule(summary["deletions"], history)
    if guard["tripped"] or (rule is not None and rule.tripped):
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
    return shown_history


def _share(
    reg: Registration,
    slack: SlackWorkspace,
    channel: str,
    upload: str,
    received: Received,
    summary: dict,
    out_dir: Path,
) -> SharedFiles:
    """Step 8: the files shared once per upload, with counts (never names); the upload's table."""
    name = original_name(upload)
    text = (
        summary_text(reg, name, summary) if reg.mode == "onboarding" else production_text(reg, name, summary)
    )
    shared_key = once_key(reg.customer.key, f"shared-{upload}-{received.sha256[:16]}")
    shared = share_files(slack, channel, text, review_files(out_dir, summary), shared_key)
    publish_upload(reg, upload, summary, shared.channel)
    return shared


def _files_shared_and_applied(
    reg: Registration,
    slack: SlackWorkspace,
    channel: str,
    upload: str,
    received: Received,
    incoming: Path,
    out_dir: Path,
    wait: WaitSettings,
) -> dict | State:
    """The upload's turn: its files made, the mass-deletion guard, step 8 (shared), step 9 (applied)."""
    customer_key, name = reg.customer.key, original_name(upload)
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
            return _unreadable(reg, slack, channel, upload, exc)
        finally:
            incoming.unlink(missing_ok=True)

        stage = MASS_DELETION  # a "no" at the guard: nothing was shared
        shown_history = _history_and_guard(reg, slack, upload, summary, wait)

        stage = "share"
        alert_missing_columns(reg, slack, name, summary)
        shared = _share(reg, slack, channel, upload, received, summary, out_dir)  # 8. the files, shared

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
        finish_upload(reg, upload, None, f"rejected by {rejected.approver}: {rejected.reason}", to=to)
        return Cancelled(message=str(rejected))
    finish_upload(reg, upload, summary, outcome)
    return {
        "upload": name,
        "channel": shared.channel,
        "files_dir": str(out_dir),
        "outcome": outcome,
        **{k: summary[k] for k in COUNTS},
    }


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
    channel = reg.customer.slack_channel if reg.mode == "onboarding" else slack.monitoring_channel
    incoming = files_dir() / customer_key / ".incoming" / upload
    out_dir = files_dir() / customer_key / Path(upload).stem

    # The upload received: downloaded and fingerprinted once per claim.
    try:
        received = receive_upload(reg, upload, incoming, once_key(customer_key, f"received-{upload}"))
    except FileNotFoundError:
        return Failed(
            message=f"{upload} is not in {customer_key}/processing (already handled, or never claimed)"
        )
    except DownloadRefused as exc:  # a link or an oversized file: refused/, its reason in Slack
        return _unreadable(reg, slack, channel, upload, exc)

    wait_for_older_uploads(reg, upload, wait)  # older claims decided: their outcomes are known
    if (decided := duplicate_or_superseded(reg, slack, upload, received)) is not None:
        return decided
    return _files_shared_and_applied(reg, slack, channel, upload, received, incoming, out_dir, wait)
