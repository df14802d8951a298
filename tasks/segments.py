"""Runbook "Update hub segments to match values in data mapping table" (API step 3, SFTP step 5).

A plan lists, per segment, what is missing in the hub: the segment itself and the options to bulk
add. Nothing is ever removed. With the hub API the plan is applied; without it, it becomes the
CSM's checklist with the runbook's navigation paths and the exact text to paste.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from tasks.hub import HubClient
from tasks.mapping import MappingTable

NAVIGATION = {
    "public": "Hub Settings > Membership Configurations > Segments, then 'add segment'",
    "private": "Hub Settings > Membership Configurations > Private Segments, then 'add private segment'",
}


class SegmentChange(BaseModel):
    name: str
    visibility: str  # public / private
    exists: bool
    segment_id: str | None = None
    options_to_add: list[str]


class SegmentPlan(BaseModel):
    changes: list[SegmentChange]
    conflicts: list[str] = []
    against_hub: bool  # False: the hub's current segments are unknown (checklist mode)

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def markdown(self) -> str:
        """The plan as a table, for the approval form and the run's artifacts."""
        if self.is_empty:
            return "The hub's segments already match the data mapping table; nothing to add.\n"
        lines = ["| segment | visibility | action | options to add |", "|---|---|---|---|"]
        for c in self.changes:
            action = "add options" if c.exists else "create, then add options"
            options = ", ".join(c.options_to_add)
            lines.append(f"| {c.name} | {c.visibility} | {action} | {len(c.options_to_add)}: {options} |")
        text = "\n".join(lines) + "\n"
        if self.conflicts:
            text += "\n**Check first:**\n" + "".join(f"- {c}\n" for c in self.conflicts)
        return text


def desired_segments(table: MappingTable) -> list[tuple[str, str, list[str]]]:
    """(segment, public/private, 10KC values) from the table, values once each in table order.

    A visibility that is not Public or Private raises: a segment is never made public by default."""
    wanted: dict[str, tuple[str, str, dict[str, str]]] = {}
    for mapped in table.fields:
        visibility = mapped.segment_visibility()
        name, _, values = wanted.setdefault(mapped.segment.casefold(), (mapped.segment, visibility, {}))
        for value in mapped.values:
            values.setdefault(value.tenkc_value.casefold(), value.tenkc_value)
    return [(name, visibility, list(values.values())) for name, visibility, values in wanted.values()]


def plan_segments(table: MappingTable, existing: list[dict[str, Any]] | None) -> SegmentPlan:
    """What to add so the hub has every segment and option of the table (`existing` None: unknown)."""
    by_name = {s["name"].casefold(): s for s in existing or []}
    changes, conflicts = [], []
    for name, visibility, values in desired_segments(table):
        current = by_name.get(name.casefold())
        if current is not None and current["visibility"] != visibility:
            conflicts.append(
                f"'{name}' is a {current['visibility']} segment in the hub; the table says {visibility}"
            )
        have = {o.casefold() for o in (current or {}).get("options", [])}
        missing = [v for v in values if v.casefold() not in have]
        if current is None or missing:
            changes.append(
                SegmentChange(
                    name=name,
                    visibility=visibility,
                    exists=current is not None,
                    segment_id=(current or {}).get("id"),
                    options_to_add=missing,
                )
            )
    return SegmentPlan(changes=changes, conflicts=conflicts, against_hub=existing is not None)


def checklist(plan: SegmentPlan, hub_url: str) -> str:
    """The CSM's steps in the hub's admin UI, with the exact text to paste into 'Bulk add options'."""
    parts = [f"In the hub ({hub_url}), for each segment below:\n"]
    for number, change in enumerate(plan.changes, start=1):
        parts.append(
            f"**{number}. {change.name}** ({change.visibility})\n"
            f"- Go to {NAVIGATION[change.visibility]} named `{change.name}` if it is not there yet.\n"
            "- Open the segment, then Bulk Actions > Bulk add options, and paste:\n\n"
            "```\n" + "\n".join(change.options_to_add) + "\n```\n"
        )
    return "\n".join(parts)


def apply_plan(client: HubClient, plan: SegmentPlan) -> dict[str, int]:
    """Create missing segments and bulk-add missing options; returns what changed."""
    created = added = 0
    for change in plan.changes:
        segment_id = change.segment_id
        if segment_id is None:
            segment_id = client.create_segment(change.name, change.visibility)["id"]
            created += 1
        if change.options_to_add:
            added += len(client.add_options(segment_id, change.options_to_add))
    return {"segments_created": created, "options_added": added}


@task(name="plan-segments", cache_policy=NO_CACHE)
def plan_segments_task(table: MappingTable, client: HubClient | None) -> SegmentPlan:
    """Plan against the hub's current segments, or against nothing when there is no hub API."""
    plan = plan_segments(table, client.list_segments() if client else None)
    get_run_logger().info("Segment plan: %d segment(s) to change", len(plan.changes))
    return plan
