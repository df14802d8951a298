"""What a new data mapping table would change on the customer's last applied upload (issue 23).

update-mapping shows it before its approval. The "old" side is what was applied: the files kept
for that upload (profile updates and summary.json). The "new" side is the file engine
(`generate_files`, its public function only) run once more on the inputs kept beside them
(tasks/contracts.py KEPT_INPUTS) with the new table. Only counts per field and values of mapping
fields come out; never a member's email or name. Prefect-free.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.contracts import KEPT_INPUTS, KEPT_MEMBERS, KEPT_UPLOAD
from tasks.files import EMAIL_ALIASES, GRACE_COLUMN, SUMMARY, UPDATES, generate_files, hub_file
from tasks.mapping import MappingTable
from tasks.tabular import header_key, read_csv

FILES = (("invites", "potential invites"), ("updates", "profile updates"), ("deletions", "profile deletions"))
VALUES_SHOWN = 10  # newly mapped or unmapped values named per field; the rest are counted


@dataclass
class FieldChange:
    """One 10KC field: members whose value would differ, HRIS values newly mapped or unmapped."""

    name: str
    members_changed: int = 0
    newly_mapped: list[str] = field(default_factory=list)
    newly_unmapped: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.members_changed or self.newly_mapped or self.newly_unmapped)


@dataclass
class WhatIf:
    """The what-if of one upload, or why there is none (`unavailable`: said plainly)."""

    upload: str
    unavailable: str = ""
    fields: list[FieldChange] = field(default_factory=list)
    old: dict[str, int] = field(default_factory=dict)  # counts of the files applied
    new: dict[str, int] = field(default_factory=dict)  # the same upload with the new table
    grace: str = ""  # the applied files held or brought back members (deletion grace): said plainly

    def markdown(self) -> str:
        """The gate's part (markdown): the per-field table, then the three files' counts."""
        head = f"**What-if on the last applied upload** `{_code(self.upload)}`"
        if self.unavailable:
            return f"{head}: {self.unavailable}\n"
        lines = [f"{head} (the files applied, against the same upload with the new table):\n\n"]
        lines.append("| field | members changed | values newly mapped | newly unmapped |\n")
        lines.append("|---|---|---|---|\n")
        for f in self.fields:
            lines.append(
                f"| {_cell(f.name)} | {f.members_changed} | {_values(f.newly_mapped)} | "
                f"{_values(f.newly_unmapped)} |\n"
            )
        if not self.fields:
            lines.append("| (no mapped field) | 0 | 0 | 0 |\n")
        lines.append("\n| file | applied (old table) | with the new table |\n|---|---|---|\n")
        for key, name in FILES:
            lines.append(f"| {name} | {self.old.get(key, 0)} | {self.new.get(key, 0)} |\n")
        if self.grace:
            lines.append(f"\n{self.grace}\n")
        return "".join(lines)

    def slack_lines(self) -> list[str]:
        """Plain one-liners for the Slack notice (the caller escapes them through a template)."""
        if self.unavailable:
            return [self.unavailable]
        lines = [
            f"{f.name}: {f.members_changed} member(s) change, {len(f.newly_mapped)} value(s) newly "
            f"mapped, {len(f.newly_unmapped)} newly unmapped"
            for f in self.fields
            if f.changes
        ] or ["no member's value changes"]
        counts = ", ".join(f"{name} {self.old.get(k, 0)} → {self.new.get(k, 0)}" for k, name in FILES)
        return [*lines, counts, *([self.grace] if self.grace else [])]


def _code(text: str) -> str:
    return text.replace("`", "'")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _values(values: list[str]) -> str:
    if not values:
        return "0"
    shown = ", ".join(f"`{_code(_cell(v))}`" for v in values[:VALUES_SHOWN])
    more = f" and {len(values) - VALUES_SHOWN} more" if len(values) > VALUES_SHOWN else ""
    return f"{len(values)}: {shown}{more}"


def kept_inputs(kept: Path) -> tuple[Path, Path]:
    """Where process-upload keeps the upload and the member export its files were made from."""
    return kept / KEPT_INPUTS / KEPT_UPLOAD, kept / KEPT_INPUTS / KEPT_MEMBERS


def keep_inputs(kept: Path, upload: Path, members: Path) -> None:
    """Keep the upload and member export beside the files made from them (hard links where they can
    be: no copy of a staff list); purge-old-files deletes them with the folder."""
    for source, target in zip((upload, members), kept_inputs(kept), strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:  # another file system
            shutil.copyfile(source, target)


def missing(kept: Path, retention_days: int | None = None) -> str:
    """Why the what-if cannot be computed from `kept`, in one plain sentence; "" when it can."""
    if not kept.is_dir():
        after = f" after {retention_days} days" if retention_days else " after the retention period"
        return (
            f"its files were deleted by purge-old-files{after}, so no what-if can be computed; "
            "the next upload uses the new table"
        )
    upload, members = kept_inputs(kept)
    if not (upload.is_file() and members.is_file() and (kept / SUMMARY).is_file()):
        return (
            "it was processed before uploads' inputs were kept, so no what-if can be computed; "
            "the next upload uses the new table"
        )
    return ""


def what_if(upload: str, kept: Path, new_table: MappingTable, scratch: Path) -> WhatIf:
    """Run the engine on the kept inputs with `new_table` into `scratch` and compare with what was
    applied (the kept files); `unavailable` says plainly when the kept files are gone."""
    if problem := missing(kept):
        return WhatIf(upload, unavailable=problem)
    hris_csv, members_csv = kept_inputs(kept)
    old = json.loads((kept / SUMMARY).read_text(encoding="utf-8"))
    result = generate_files(
        hris_csv, members_csv, new_table, scratch, allow_mass_deletion=True, hub_copies=True
    )
    new: dict[str, Any] = dict(result.summary)
    changed = members_changed(hub_file(kept, UPDATES), hub_file(scratch, UPDATES), members_csv)
    segment_of = {f.hris_field: f.segment for f in new_table.fields}
    mapped, unmapped = _mapping_changes(old, new)
    names = list(dict.fromkeys([*new_table.segments(), *changed]))
    fields = []
    for name in names:
        fields.append(
            FieldChange(
                name=name,
                members_changed=changed.get(name, 0),
                newly_mapped=[v for f, v in mapped if segment_of.get(f, f) == name],
                newly_unmapped=[v for f, v in unmapped if segment_of.get(f, f) == name],
            )
        )
    counts = ("invites", "updates", "deletions", "deactivations", "rejected_rows")
    return WhatIf(
        upload,
        fields=fields,
        old={k: int(old.get(k, 0)) for k in counts},
        new={k: int(new[k]) for k in counts},
        grace=grace_note(old),
    )


def grace_note(applied: dict[str, Any]) -> str:
    """Deletion grace changed the applied files (held members as updates, returning ones reactivated);
    the new table's side is before grace, so those members differ in the counts by design."""
    grace = applied.get("deletion_grace") or {}
    held, back = int(grace.get("held", 0)), int(grace.get("back", 0))
    if not (held or back):
        return ""
    return (
        f"The applied files include deletion grace ({held} member(s) held deactivated, {back} back): "
        "the new table's counts are before grace, so its deletions and updates differ by those members."
    )


Pairs = list[tuple[str, str]]


def _mapping_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[Pairs, Pairs]:
    """(HRIS field, value) unmapped in the applied files and not with the new table, and the reverse."""
    before = {(u["field"], u["value"]) for u in old.get("unmapped_values", [])}
    after = {(u["field"], u["value"]) for u in new.get("unmapped_values", [])}
    return sorted(before - after), sorted(after - before)


def _segment_table(
    path: Path, label: str, email_aliases: list[str], segments: list[str] | None, only: pa.Array | None = None
) -> pa.Table:
    """Email (trimmed) and each segment column of a CSV, as text; `None` segments: every column after
    the first four of a profile updates file (Email, names, status). `only`: the rows of these emails."""
    keys = None if segments is None else [header_key(s) for s in segments]
    table = read_csv(
        label, path, wanted=None if keys is None else [*email_aliases, *keys], categorical=keys or ()
    )
    email = table.column(email_aliases)
    if email is None:
        return pa.table({"Email": pa.array([], pa.string())})
    email = pc.utf8_trim_whitespace(email)
    rows = None if only is None else pc.is_in(email, value_set=only)
    columns = {"Email": email if rows is None else email.filter(rows)}
    for name in table.header[4:] if segments is None else segments:
        column = table.column([header_key(name)])
        if column is not None:
            column = column if rows is None else column.filter(rows)
            columns[name] = pc.fill_null(column.cast(pa.string()), "")
    return pa.table(columns)


def _codes(columns: list[pa.Array | pa.ChunkedArray]) -> list[np.ndarray]:
    """The arrays' values as integer codes of one shared dictionary, so they compare as numbers."""
    lengths = np.cumsum([0, *(len(c) for c in columns)])
    joined = pa.chunked_array([c for c in columns if len(c)], pa.string()) if lengths[-1] else None
    if joined is None:
        return [np.zeros(0, np.int64) for _ in columns]
    codes = pc.dictionary_encode(joined.combine_chunks()).indices.to_numpy().astype(np.int64)
    return [codes[lengths[i] : lengths[i + 1]] for i in range(len(columns))]


def members_changed(old_updates: Path, new_updates: Path, members_csv: Path) -> dict[str, int]:
    """Per 10KC field, the members whose value after applying the new table's profile updates differs
    from after the applied ones: a member in neither updates file keeps the hub's value both ways.

    Emails and values become integer codes (one dictionary each), so the comparison is numpy
    indexing rather than joins."""
    old = _segment_table(old_updates, "applied profile updates", ["email"], None)
    new = _segment_table(new_updates, "new profile updates", ["email"], None)
    fields = [  # grace's own column is no 10KC field a table maps
        name for name in dict.fromkeys([*old.column_names[1:], *new.column_names[1:]]) if name != GRACE_COLUMN
    ]
    listed = pa.concat_arrays([old["Email"].combine_chunks(), new["Email"].combine_chunks()])
    hub = _segment_table(members_csv, "kept member export", EMAIL_ALIASES, fields, listed)
    ids_old, ids_new, ids_hub = _codes([old["Email"], new["Email"], hub["Email"]])
    people = int(max((ids.max(initial=-1) for ids in (ids_old, ids_new, ids_hub)), default=-1)) + 1
    changed = {}
    for name in fields:
        sides = [t[name] if name in t.column_names else pa.array([], pa.string()) for t in (old, new, hub)]
        v_old, v_new, v_hub = _codes(sides)
        hub_value = np.full(people, -1, np.int64)
        hub_value[ids_hub[: len(v_hub)]] = v_hub
        before, after = hub_value.copy(), hub_value.copy()
        if name in old.column_names:
            before[ids_old] = v_old
        if name in new.column_names:
            after[ids_new] = v_new
        changed[name] = int((before != after).sum())
    return changed
