"""What a gate's Slack notice shows besides its title, so an Approve click in Slack sees what it approves:
the counts and the deletion guard of an upload's files, or the email as it will go out."""

from __future__ import annotations

from pathlib import Path

from tasks.emails import EmailDraft, markup_to_text
from tasks.templating import SlackText, file_size, render, slack_text

SECTION_LIMIT = 3000  # Slack refuses a section block whose text is longer
BODY_LINES = 8  # the first lines of an email's body in its review notice
LINE_CHARS = 200


def files_details(upload: str, summary: dict) -> SlackText:
    """An upload's counts and the deletion guard's numbers, for the apply-files and mass-deletion notices."""
    guard = summary["deletion_guard"]
    from tasks.deletion_grace import grace_in_words  # the file engine: only for upload notices

    return _trimmed(
        render(
            "slack/approve_files.md.j2",
            upload=upload,
            **{k: summary[k] for k in ("invites", "updates", "deactivations", "reactivations", "deletions")},
            rejected_rows=summary["rejected_rows"],
            guard_deletions=guard["deletions"],
            guard_members=guard["members"],
            guard_pct=guard["deletion_pct"],
            guard_limit=guard["max_deletion_pct"],
            guard_tripped=guard["tripped"],
            grace=grace_in_words(summary),
        )
    )


def email_details(draft: EmailDraft) -> SlackText:
    """To, Cc, subject, attachments with their sizes and the body's first lines (each escaped)."""
    lines = markup_to_text(draft.body).splitlines()
    shown = [line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 1] + "…" for line in lines[:BODY_LINES]]
    quoted = [f">{slack_text(line)}" for line in shown] + ([">…"] if len(lines) > BODY_LINES else [])
    paths = [Path(a) for a in draft.attachments]
    attachments = [
        f":paperclip: {slack_text(p.name)} ({file_size(p.stat().st_size) if p.exists() else 'missing'})"
        for p in paths
    ]
    return _trimmed(
        render(
            "slack/review_email.md.j2",
            to=", ".join(draft.to),
            cc=", ".join(draft.cc) or "—",
            subject=draft.subject,
            attachments=SlackText("\n".join(attachments)),
            quoted=SlackText("\n".join(quoted)),
        )
    )


def _trimmed(text: SlackText) -> SlackText:
    return SlackText(text.rstrip("\n"))
