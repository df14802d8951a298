"""Realistic synthetic HRIS uploads, member exports and mapping tables (no real people).

Used by the benchmark at 1M rows and by the tests' property checks at a few thousand, where
`messy=True` adds what real exports contain: odd casing and spaces, duplicates, bad emails,
unknown statuses and values, delimiters, quotes and newlines inside fields.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

FIELDS = {
    "Department": [
        "Engineering",
        "Sales",
        "Marketing",
        "Finance",
        "People",
        "Legal",
        "Support",
        "Operations",
    ],
    "Location": ["London", "Paris", "Berlin", "New York", "Toronto", "Sydney", "Singapore", "Madrid"],
    "Management Level": ["Individual Contributor", "Manager", "Senior Manager", "Director", "Executive"],
}
SEGMENTS = {"Department": "Department", "Location": "Office", "Management Level": "Level"}
FIRST = ["Ana", "Ben", "Chloé", "Dev", "Eva", "Femi", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lena", "Mo", "Nia"]
LAST = ["Smith", "O'Neil", "García", "Nguyen", "Okafor", "Rossi", "Kim", "Müller", "Patel", "Dubois"]


@dataclass
class Dataset:
    hris: Path
    members: Path
    mapping: Path


def write_mapping(path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["Category", "HRIS Field", "HRIS Values", "Notes", "10KC Segment", "10KC Value", "Visibility"]
        )
        for field, values in FIELDS.items():
            for i, value in enumerate(values):
                first = i == 0
                w.writerow(
                    [
                        "Org" if first else "",
                        field if first else "",  # merged cell exported: blank B continues the field
                        value.upper() if field == "Location" else value,  # matched case-insensitively
                        "",
                        SEGMENTS[field] if first and SEGMENTS[field] != field else "",
                        value,
                        ("Private" if field == "Management Level" else "Public") if first else "",
                    ]
                )


def make_dataset(
    folder: Path,
    rows: int,
    seed: int = 7,
    messy: bool = False,
    delimiter: str = ",",
    encoding: str = "utf-8",
    line_ending: str = "\n",
    status_column: bool = True,
) -> Dataset:
    """Write hris.csv, members.csv and mapping.csv into folder."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    people = [
        {
            "email": f"person{i:07d}@example.com",
            "first": rng.choice(FIRST),
            "last": rng.choice(LAST),
            **{field: rng.choice(values) for field, values in FIELDS.items()},
        }
        for i in range(rows)
    ]
    field_names = list(FIELDS)
    members_path, hris_path, mapping_path = (
        folder / "members.csv",
        folder / "hris.csv",
        folder / "mapping.csv",
    )

    with open(members_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["Email", "First Name", "Last Name", "Status", *SEGMENTS.values()])
        for i, p in enumerate(people):
            if i % 33 == 0:
                continue  # new joiners: not in the hub yet
            changed = i % 17 == 0
            w.writerow(
                [
                    p["email"],
                    p["first"],
                    p["last"] + ("-Old" if i % 41 == 0 else ""),
                    "deactivated" if i % 97 == 0 else "active",
                    *[(FIELDS[fld][0] if changed and fld == "Location" else p[fld]) for fld in field_names],
                ]
            )
        for j in range(rows // 50):  # leavers: in the hub, gone from the HRIS
            w.writerow(
                [f"leaver{j:06d}@example.com", "Left", "Company", "active", "Sales", "Paris", "Manager"]
            )

    with open(hris_path, "w", newline="", encoding=encoding, errors="replace") as f:
        w = csv.writer(f, delimiter=delimiter, lineterminator=line_ending)
        header = [
            "Work Email" if messy else "Email",
            "First Name",
            "Last Name",
            "Employee Status",
            *field_names,
        ]
        if messy:
            header = [f"  {h.upper()} " if k % 2 else h for k, h in enumerate(header)] + ["Cost Centre"]
        keep = [k for k, h in enumerate(header) if status_column or "status" not in h.lower()]
        w.writerow([header[k] for k in keep])
        for i, p in enumerate(people):
            status = "inactive" if i % 29 == 0 else "active"
            email, first, last = p["email"], p["first"], p["last"]
            values = [p[fld] for fld in field_names]
            extra = []
            if messy:
                extra = [f"CC-{i % 13}"]
                roll = rng.random()
                if roll < 0.02:
                    email = "  " + email.upper() + " "
                elif roll < 0.03:
                    email = email.replace("@", "")  # invalid
                elif roll < 0.035:
                    email = ""
                elif roll < 0.04:
                    status = rng.choice(["On Leave", "terminated", "ACTIVE", " Inactive ", ""])
                elif roll < 0.05:
                    values[1] = rng.choice(["Lisbon", "remote", ""])  # unknown or blank location
                elif roll < 0.055:
                    first = f'{first}, "Jr"'
                elif roll < 0.06:
                    last = f"{last}\n(line two)"
                elif roll < 0.065:
                    first = "=HYPERLINK(1)"
            record = [email, first, last, status, *values, *extra]
            w.writerow([record[k] for k in keep])
            if messy and i % 250 == 0:
                record[0] = email.lower()
                w.writerow([record[k] for k in keep])  # duplicate row

    write_mapping(mapping_path)
    return Dataset(hris_path, members_path, mapping_path)


def make_messy_upload(folder: Path, rows: int, rejected: int = 7, multiline: int = 10) -> Dataset:
    """The clean dataset with the upload rewritten as real exports often come: a UTF-8 BOM, every
    field quoted, a few names spanning two lines and a few rejected rows (bad emails and statuses)."""
    data = make_dataset(folder, rows)
    clean = data.hris.with_name("hris-clean.csv")
    data.hris.replace(clean)
    spread = max(rows // max(rejected + multiline, 1), 1)
    with (
        open(clean, newline="", encoding="utf-8") as f_in,
        open(data.hris, "w", newline="", encoding="utf-8-sig") as f_out,
    ):
        reader, writer = csv.reader(f_in), csv.writer(f_out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(next(reader))
        for i, record in enumerate(reader):
            slot, at = divmod(i, spread)
            if at == spread // 2 and slot < rejected:
                if slot % 2:
                    record[3] = "on leave"  # not active or inactive
                else:
                    record[0] = record[0].replace("@", " at ")  # not an email
            elif at == spread // 2 and slot < rejected + multiline:
                record[2] += "\n(second line)"
            writer.writerow(record)
    clean.unlink()
    return data
