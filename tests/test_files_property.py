"""On generated messy data, the engine partitions people exactly as the plain-Python reference does."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmarks.datasets import make_dataset
from benchmarks.reference import generate_files_reference
from tasks import tabular
from tasks.files import DELETIONS, INVITES, REJECTED, UPDATES, generate_files

DIALECTS = [
    {"messy": False},
    {"messy": True},
    {"messy": True, "delimiter": ";", "encoding": "cp1252", "line_ending": "\r\n"},
    {"messy": True, "delimiter": "\t", "encoding": "utf-8-sig"},
    {"messy": True, "delimiter": "|"},
    {"messy": True, "status_column": False},
]


def _emails(path: Path) -> set[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return {row["Email"].strip().lower() for row in csv.DictReader(f)}


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: "-".join(f"{v!r}" for v in d.values()))
def test_engine_matches_reference_and_partitions_people(tmp_path, seed, dialect):
    data = make_dataset(tmp_path / "in", rows=2500, seed=seed, **dialect)
    engine = generate_files(
        data.hris, data.members, data.mapping, tmp_path / "engine", allow_mass_deletion=True
    )
    reference = generate_files_reference(data.hris, data.members, data.mapping, tmp_path / "reference")

    for name in (INVITES, UPDATES, DELETIONS, REJECTED):
        assert (tmp_path / "engine" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
    assert engine.summary["unmapped_values"] == reference["unmapped_values"]

    out = tmp_path / "engine"
    invites, updates, deletions = _emails(out / INVITES), _emails(out / UPDATES), _emails(out / DELETIONS)
    members = _emails(data.members)
    with open(
        data.hris, newline="", encoding="utf-8" if "cp" not in dialect.get("encoding", "") else "cp1252"
    ) as f:
        text = f.read().lstrip("\ufeff")
    uploaded = {
        row[0].strip().lower()
        for row in csv.reader(text.splitlines(keepends=True), delimiter=dialect.get("delimiter", ","))
        if row
    }
    assert invites.isdisjoint(members), "an invite goes only to someone not yet in the hub"
    assert updates <= members, "an update only touches existing members"
    assert deletions <= members and deletions.isdisjoint(uploaded), (
        "only members absent from the upload are deleted"
    )
    assert members - deletions <= uploaded, "every member kept is in the upload"
    assert invites.isdisjoint(updates) and invites.isdisjoint(deletions) and updates.isdisjoint(deletions)
    assert engine.summary["invites"] > 0 and engine.summary["updates"] > 0 and engine.summary["deletions"] > 0
    if dialect["messy"]:
        assert engine.summary["rejected_rows"] > 0 and engine.summary["unmapped_values"]


@pytest.mark.parametrize("piece_bytes", [64, 8 << 20])
@pytest.mark.parametrize("dialect", DIALECTS[1:4], ids=["comma", "semicolon-cp1252-crlf", "tab-bom"])
def test_vectorised_line_numbers_match_the_csv_module(tmp_path, monkeypatch, dialect, piece_bytes):
    """The fast line scan (quoted newlines, CRLF, BOM; read in pieces) agrees with a full csv parse."""
    monkeypatch.setattr(tabular, "SCAN_BYTES", piece_bytes)
    data = make_dataset(tmp_path, rows=1500, seed=3, **dialect)
    table = tabular.read_csv("HRIS upload", data.hris)
    fast = tabular.record_start_lines(data.hris, table.encoding, table.delimiter)
    exact = [1] + [
        line
        for line, _ in tabular.records_with_lines(data.hris.read_bytes(), table.encoding, table.delimiter)
    ]
    assert fast is not None and fast.tolist() == exact
    assert exact[-1] > len(exact)  # the data has records spanning lines
