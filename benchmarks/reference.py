"""The file engine's semantics in plain Python (csv module + dicts): the benchmark's baseline and
the tests' oracle. Deliberately straightforward; tasks/files.py must produce the same files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tasks.addresses import address_key, is_address
from tasks.files import EMAIL_ALIASES, FIRST_NAME_ALIASES, LAST_NAME_ALIASES, NO_STATUS_NOTE, STATUS_ALIASES
from tasks.mapping import read_mapping_file
from tasks.tabular import detect_delimiter, detect_encoding, header_key


def _rows(path: Path):
    data = Path(path).read_bytes()
    text = data.decode(detect_encoding(data)).lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=detect_delimiter(text[:65536]))
    header = next(reader)
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        index.setdefault(header_key(name), i)
    start = reader.line_num + 1
    for record in reader:
        if record:
            yield start, index, record
        start = reader.line_num + 1


def _get(record, index, aliases):
    for alias in aliases:
        if alias in index:
            i = index[alias]
            return record[i].strip() if i < len(record) else ""
    return None


def _name(first: str, last: str) -> str | None:
    return " ".join(f"{first} {last}".split()).casefold() if first.strip() and last.strip() else None


def _full_name(record, index) -> str | None:
    return _name(_get(record, index, FIRST_NAME_ALIASES) or "", _get(record, index, LAST_NAME_ALIASES) or "")


def _escape(cell) -> str:
    cell = "" if cell is None else str(cell)
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def _write(path: Path, header, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([c if isinstance(c, int) else _escape(c) for c in row])


def generate_files_reference(hris_csv, members_csv, mapping, out_dir, max_deletion_pct=20) -> dict:
    table = read_mapping_file(mapping)
    segments = table.segments()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    members: dict[str, dict] = {}
    for _, index, record in _rows(members_csv):
        email = _get(record, index, ["email"])
        if not email or address_key(email) in members:
            continue
        status = (_get(record, index, ["status"]) or "").lower()
        members[address_key(email)] = {
            "email": email,
            "first": _get(record, index, FIRST_NAME_ALIASES) or "",
            "last": _get(record, index, LAST_NAME_ALIASES) or "",
            "deactivated": status in ("deactivated", "inactive"),
            "segments": [_get(record, index, [header_key(s)]) or "" for s in segments],
        }

    rows = []
    counts: dict[str, int] = {}
    has_first = has_last = has_status = False
    for line, index, record in _rows(hris_csv):
        has_first = has_first or FIRST_NAME_ALIASES[0] in index
        has_last = has_last or LAST_NAME_ALIASES[0] in index
        has_status = has_status or any(alias in index for alias in STATUS_ALIASES)
        email = _get(record, index, EMAIL_ALIASES) or ""
        status = (_get(record, index, STATUS_ALIASES) or "").lower() or "active"
        key = address_key(email)
        valid = bool(key) and is_address(email)
        if valid:
            counts[key] = counts.get(key, 0) + 1
        values: dict[str, str] = {}
        for field in table.fields:
            raw = _get(record, index, [header_key(field.hris_field)])
            if raw is not None:
                values[field.hris_field] = raw
        rows.append((line, email, key, valid, status, index, record, values))

    present = {r[2] for r in rows if r[2]}  # a rejected row keeps its person too
    rejected, people, unmapped = [], [], {}
    unkeyed_names = set()  # people on rows whose email is missing or invalid, by name
    for line, email, key, valid, status, index, record, values in rows:
        if not key:
            reason = "missing email"
        elif not valid:
            reason = "invalid email"
        elif counts[key] > 1:
            reason = "email appears more than once in the file"
        elif status not in ("active", "inactive"):
            reason = f"status '{status}' is not active or inactive"
        else:
            reason = None
        if reason:
            rejected.append((line, email, reason))
            if not valid and _full_name(record, index):
                unkeyed_names.add(_full_name(record, index))
            continue
        seg_values: list[str | None] = [None] * len(segments)
        for field in table.fields:
            raw = values.get(field.hris_field)
            if raw is None or raw == "":
                continue
            translated = table.translation(field).get(raw.lower())
            if translated is None:
                unmapped[(field.hris_field, raw)] = unmapped.get((field.hris_field, raw), 0) + 1
            else:
                i = segments.index(field.segment)
                if seg_values[i] is None:
                    seg_values[i] = translated
        first = _get(record, index, FIRST_NAME_ALIASES) or ""
        last = _get(record, index, LAST_NAME_ALIASES) or ""
        people.append((key, email, first, last, status == "inactive", seg_values))

    invites, updates = [], []
    deactivations = reactivations = 0
    for key, email, first, last, inactive, seg_values in people:
        member = members.get(key)
        if member is None:
            if not inactive:
                invites.append((key, [email, first, last, *[v or "" for v in seg_values]]))
            continue
        if not has_status:  # no status column: everyone keeps the status they have in the hub
            inactive = member["deactivated"]
        deactivate = inactive and not member["deactivated"]
        reactivate = not inactive and member["deactivated"]
        changed = deactivate or reactivate
        changed |= has_first and first != "" and first != member["first"]
        changed |= has_last and last != "" and last != member["last"]
        changed |= any(v is not None and v != m for v, m in zip(seg_values, member["segments"], strict=True))
        if changed:
            deactivations += deactivate
            reactivations += reactivate
            updates.append(
                (
                    key,
                    [
                        member["email"],
                        first or member["first"],
                        last or member["last"],
                        "inactive" if inactive else "active",
                        *[
                            v if v is not None else m
                            for v, m in zip(seg_values, member["segments"], strict=True)
                        ],
                    ],
                )
            )
    deletions = sorted(
        (key, [m["email"], m["first"], m["last"]])
        for key, m in members.items()
        if key not in present and _name(m["first"], m["last"]) not in unkeyed_names
    )

    _write(
        out_dir / "potential invites.csv",
        ["Email", "First Name", "Last Name", *segments],
        [r for _, r in sorted(invites)],
    )
    _write(
        out_dir / "profile updates.csv",
        ["Email", "First Name", "Last Name", "Employee Status", *segments],
        [r for _, r in sorted(updates)],
    )
    _write(out_dir / "profile deletions.csv", ["Email", "First Name", "Last Name"], [r for _, r in deletions])
    _write(out_dir / "rejected rows.csv", ["Line", "Email", "Reason"], sorted(rejected))
    pct = round(100 * len(deletions) / len(members), 2) if members else 0.0
    summary = {
        "invites": len(invites),
        "updates": len(updates),
        "deletions": len(deletions),
        "deactivations": deactivations,
        "reactivations": reactivations,
        "rejected_rows": len(rejected),
        "unmapped_values": sorted(
            ({"field": f, "value": v, "rows": n} for (f, v), n in unmapped.items()),
            key=lambda u: (u["field"], -u["rows"], u["value"]),
        ),
        "deletion_guard_tripped": len(deletions) > 10 and pct > max_deletion_pct,
        "status_column": has_status,
        "notes": [] if has_status else [NO_STATUS_NOTE],
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
