"""The file engine's rules, one function per rule of the runbook, in the order a person would apply
them: rejected rows, potential invites, profile updates (status changes included), profile deletions,
and the mass-deletion guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.files_read import BAD_STATUS, INACTIVE, Hris, Matches, Members
from tasks.files_segments import Segments


class DeletionGuard(TypedDict):
    tripped: bool
    allowed: bool
    max_deletion_pct: float
    deletions: int
    members: int
    deletion_pct: float


@dataclass
class Updates:
    table: pa.Table
    deactivations: int
    reactivations: int


def _names(first: pa.Array, last: pa.Array) -> list[str | None]:
    """'first last' per row, spaces collapsed and case folded, for matching a person whose email is
    missing or invalid; a row without both names matches no one."""
    return [
        " ".join(f"{f} {s}".split()).casefold() if f.strip() and s.strip() else None
        for f, s in zip(first.to_pylist(), last.to_pylist(), strict=True)
    ]


def _sorted_by(keys: pa.Array, columns: dict[str, pa.Array]) -> pa.Table:
    order = pc.sort_indices(keys)
    return pa.table({name: column.take(order) for name, column in columns.items()})


def rejected(hris: Hris, matches: Matches) -> np.ndarray:
    """Rejected rows: a missing or invalid email, an email on two rows, or a status other than
    active or inactive. They change no one (and their people are not deleted)."""
    rejected: np.ndarray = rejected_before_match(hris) | matches.duplicated
    return rejected


def rejected_before_match(hris: Hris) -> np.ndarray:
    """The rows rejected for their own cells (email, status), known before anyone is matched."""
    own: np.ndarray = ~hris.valid_email | (hris.status == BAD_STATUS)
    return own


def rejected_rows(hris: Hris, matches: Matches, rows: np.ndarray) -> pa.Table:
    """Line, email and reason for each rejected row (only these rows are looked at one by one)."""
    lines = hris.table.line_numbers(rows.tolist())
    statuses = (
        hris.raw_status.take(pa.array(rows)).to_pylist() if hris.raw_status is not None else [""] * len(rows)
    )
    reasons = []
    for row, status in zip(rows.tolist(), statuses, strict=True):
        if not hris.has_email[row]:
            reasons.append("missing email")
        elif not hris.valid_email[row]:
            reasons.append("invalid email")
        elif matches.duplicated[row]:
            reasons.append("email appears more than once in the file")
        else:
            reasons.append(f"status '{(status or '').strip().lower()}' is not active or inactive")
    return pa.table(
        {
            "Line": pa.array([lines[r] for r in rows.tolist()], pa.int64()),
            "Email": hris.email.take(pa.array(rows, pa.int64())),
            "Reason": pa.array(reasons, pa.string()),
        }
    ).sort_by("Line")


def invites(hris: Hris, matches: Matches, segments: Segments, valid: np.ndarray) -> pa.Table:
    """'We'll invite people to 10KC when you add a row in the CSV file': a valid row of someone who is
    not a member, unless inactive. Potential invites: a person decides who is invited."""
    invite = np.nonzero(valid & (matches.hub_row < 0) & (hris.status != INACTIVE))[0]
    invite_idx = pa.array(invite)
    return _sorted_by(
        hris.key.take(invite_idx),
        {
            "Email": hris.email.take(invite_idx),
            "First Name": hris.first.take(invite_idx),
            "Last Name": hris.last.take(invite_idx),
            **{
                name: segments.vocabularies[s].strings(segments.hris[s][invite])
                for s, name in enumerate(segments.names)
            },
        },
    )


def updates(hris: Hris, members: Members, matches: Matches, segments: Segments, valid: np.ndarray) -> Updates:
    """'We'll update user profiles on 10KC to match the row of data for each user in the latest CSV':
    each member whose valid row differs in status, a name or a 10KC value."""
    hub = np.nonzero(valid & (matches.hub_row >= 0))[0]
    hub_m = matches.hub_row[hub]
    deactivate, reactivate = _status_changes(hris, members, hub, hub_m)
    changed = deactivate | reactivate | _profile_changes(hris, members, segments, hub, hub_m)
    return Updates(
        table=_update_rows(hris, members, segments, hub[changed], hub_m[changed]),
        deactivations=int(deactivate[changed].sum()),
        reactivations=int(reactivate[changed].sum()),
    )


def _status_changes(
    hris: Hris, members: Members, hub: np.ndarray, hub_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """'We will deactivate accounts when status changes to "inactive". We will reactivate accounts if
    the status changes back to "active".' Without a status column, neither."""
    if hris.raw_status is None:
        unchanged = np.zeros(len(hub), bool)
        return unchanged, unchanged
    inactive, deactivated = hris.status[hub] == INACTIVE, members.deactivated[hub_m]
    return inactive & ~deactivated, ~inactive & deactivated


def _profile_changes(
    hris: Hris, members: Members, segments: Segments, hub: np.ndarray, hub_m: np.ndarray
) -> np.ndarray:
    """A name or a 10KC value on the row that differs from the member's; a blank cell (or a value the
    mapping table does not know) changes nothing."""
    changed = np.zeros(len(hub), bool)
    hub_idx, hub_m_idx = pa.array(hub), pa.array(hub_m)
    for h_names, m_names, present in (
        (hris.first, members.first, hris.has_first),
        (hris.last, members.last, hris.has_last),
    ):
        if present:
            mine, theirs = h_names.take(hub_idx), m_names.take(hub_m_idx)
            differs = pc.and_(pc.not_equal(mine, ""), pc.not_equal(mine, theirs))
            changed |= differs.to_numpy(zero_copy_only=False)
    for h_codes, m_codes in zip(segments.hris, segments.members, strict=True):
        mine = h_codes[hub]
        changed |= (mine >= 0) & (mine != m_codes[hub_m])
    return changed


def _update_rows(
    hris: Hris, members: Members, segments: Segments, upd: np.ndarray, upd_m: np.ndarray
) -> pa.Table:
    """Each updated profile as the row has it, the member's own value where the row's cell is blank."""
    upd_idx, upd_m_idx = pa.array(upd), pa.array(upd_m)

    def prefer_hris(h_values: pa.Array, m_values: pa.Array) -> pa.Array:
        mine = h_values.take(upd_idx)
        return pc.if_else(pc.equal(mine, ""), m_values.take(upd_m_idx), mine)

    inactive = hris.status[upd] == INACTIVE if hris.raw_status is not None else members.deactivated[upd_m]
    return _sorted_by(
        hris.key.take(upd_idx),
        {
            "Email": members.email.take(upd_m_idx),
            "First Name": prefer_hris(hris.first, members.first),
            "Last Name": prefer_hris(hris.last, members.last),
            "Employee Status": pc.if_else(pa.array(inactive), "inactive", "active"),
            **{
                name: segments.vocabularies[s].strings(
                    np.where(segments.hris[s][upd] >= 0, segments.hris[s][upd], segments.members[s][upd_m])
                )
                for s, name in enumerate(segments.names)
            },
        },
    )


def deletions(hris: Hris, members: Members, matches: Matches) -> pa.Table:
    """'We'll remove accounts from the 10KC platform when you delete rows in the latest CSV file': each
    member on no row. A row whose email is missing or invalid still names its person by first and last
    name, who is kept."""
    gone = matches.m_rows[~matches.in_file[matches.ids_m[matches.m_rows]]]
    unkeyed = pa.array(np.nonzero(~hris.valid_email)[0])
    names = set(_names(hris.first.take(unkeyed), hris.last.take(unkeyed))) - {None}
    if names and len(gone):
        named = _names(members.first.take(pa.array(gone)), members.last.take(pa.array(gone)))
        gone = gone[np.array([name not in names for name in named], bool)]
    gone_idx = pa.array(gone)
    return _sorted_by(
        members.key.take(gone_idx),
        {
            "Email": members.email.take(gone_idx),
            "First Name": members.first.take(gone_idx),
            "Last Name": members.last.take(gone_idx),
        },
    )


def deletion_guard(
    deletions: int, members: int, max_deletion_pct: float, allow_mass_deletion: bool
) -> DeletionGuard:
    """More than 10 deletions and over `max_deletion_pct` of the members stops the run for a person
    to look (the files are still written), unless allowed."""
    deletion_pct = round(100 * deletions / members, 2) if members else 0.0
    tripped = deletions > 10 and deletion_pct > max_deletion_pct
    return DeletionGuard(
        tripped=tripped,
        allowed=bool(tripped and allow_mass_deletion),
        max_deletion_pct=max_deletion_pct,
        deletions=deletions,
        members=members,
        deletion_pct=deletion_pct,
    )
