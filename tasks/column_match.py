"""A mapped column missing from an upload, said where people look, with its likely new name.

When `Department` becomes `Dept`, the upload still reads, but updates of that segment stop for
good. Only when a mapped column is missing are the upload's unknown columns read (a second pass
over just those columns, dictionary-encoded), so the usual upload costs nothing more. An unknown
column whose distinct values are mostly the missing field's values in the mapping table (column C)
is named as its likely new name.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc

from tasks.mapping_table import MappingTable
from tasks.tabular import Table, header_key, read_csv

MIN_SHARE = 0.5  # more than half of a column's distinct values must be the field's values


def renamed_columns(
    hris: Table, hris_csv: Path | str, table: MappingTable, missing: list[str], known: list[str]
):
    """[{field, column, matching, values}] for each missing field with a likely renamed column."""
    if not missing:
        return []
    known_keys = set(known)
    candidates = [h for h in hris.header if h and header_key(h) not in known_keys]
    if not candidates:
        return []
    keys = [header_key(h) for h in candidates]
    extra = read_csv("HRIS upload", hris_csv, wanted=keys, categorical=keys)
    distinct = {}
    for name in candidates:
        column = extra.column([header_key(name)])
        values = {v.strip().casefold() for v in pc.unique(column.dictionary).to_pylist() if v and v.strip()}
        if values:
            distinct[name] = values
    found = []
    for field in table.fields:
        if field.hris_field not in missing:
            continue
        mapped = set(table.translation(field))
        scored = [(len(values & mapped), name, len(values)) for name, values in distinct.items()]
        best = max(scored, default=(0, "", 0))
        if best[0] and best[0] > MIN_SHARE * best[2]:
            found.append(
                {"field": field.hris_field, "column": best[1], "matching": best[0], "values": best[2]}
            )
    return found


def findings(summary: dict) -> list[dict]:
    """{field, column, matching, values} per missing mapped column; column "" when none looks like it."""
    renamed = {r["field"]: r for r in summary.get("renamed_columns", [])}
    plain = {"column": "", "matching": 0, "values": 0}
    return [renamed.get(field, {"field": field, **plain}) for field in summary.get("missing_columns", [])]


def column_problems(summary: dict) -> list[str]:
    """One markdown line per missing mapped column (the apply gate), naming its likely new name."""
    return [
        (
            f"`{f['column']}` looks like `{f['field']}` ({f['matching']} of {f['values']} values match)"
            if f["column"]
            else f"the mapped column `{f['field']}` is not in the upload, so its segment is not updated"
        )
        + ": ask the customer or update the mapping table"
        for f in findings(summary)
    ]


def slack_column_problems(summary: dict) -> list:
    """The same lines as Slack text, the customer's column names escaped."""
    from tasks.templating import render  # jinja2 only where Slack text is made: the engine never is

    return [render("slack/column_problem.md.j2", **f) for f in findings(summary)]
