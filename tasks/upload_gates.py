"""What process-upload's gates show and bind: the mass-deletion rules that tripped, the SHA-256 of
the files an apply approval binds (a file changed since is not applied), and the upload's row in the
customer's `upload-<key>` table, which the gates list and the board charts."""

from __future__ import annotations

import hashlib
from pathlib import Path

from prefect.artifacts import create_table_artifact

from tasks.contracts import upload_artifact
from tasks.files import DELETIONS, HUB_API_DIR, INVITES, UPDATES
from tasks.once import once_task
from tasks.records import ShownFiles
from tasks.registry import Registration
from tasks.sftp import original_name
from tasks.templating import SlackText, render
from tasks.upload_history import CARRIED, PENDING, HistoryRule, customer_uploads, upload_table

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
