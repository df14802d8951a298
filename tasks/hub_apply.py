"""Runbook SFTP step 9 in the hub: the three files applied through the hub API, each upload once and
each of its three hub uploads a once-step of its own; without a hub block, the CSM's checklist of
where each file goes in the hub's admin pages."""

from __future__ import annotations

from pathlib import Path

from blocks import TenKCHub
from tasks.files import DELETIONS, INVITES, UPDATES, hub_file
from tasks.once import already_done, once_task

HUB_PATHS = {
    INVITES: "Invite Members > Bulk Invites > Upload member profile data",
    UPDATES: "Members > Manage Members > Actions > Edit members",
    DELETIONS: "Members > Manage Members > Actions > Remove members from Hub",
}


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
