"""On generated messy data, the engine partitions people exactly as the plain-Python reference does."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import idna
import pyarrow as pa
import pytest

from benchmarks.datasets import make_dataset
from benchmarks.reference import generate_files_reference
from tasks import csv_lines, tabular
from tasks.addresses import address_key, address_keys, is_address
from tasks.customer import check_email
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
    records = [
        row
        for row in csv.reader(text.splitlines(keepends=True), delimiter=dialect.get("delimiter", ","))
        if row
    ]
    uploaded = {row[0].strip().lower() for row in records}
    # a row whose email is missing or invalid still names its person: kept by first and last name
    unkeyed = {(row[1].strip(), row[2].strip()) for row in records[1:] if "@" not in row[0]}
    with open(data.members, newline="", encoding="utf-8") as f:
        uploaded |= {
            m["Email"].strip().lower()
            for m in csv.DictReader(f)
            if (m["First Name"].strip(), m["Last Name"].strip()) in unkeyed
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
    monkeypatch.setattr(csv_lines, "SCAN_BYTES", piece_bytes)
    data = make_dataset(tmp_path, rows=1500, seed=3, **dialect)
    table = tabular.read_csv("HRIS upload", data.hris)
    fast = tabular.record_start_lines(data.hris, table.encoding, table.delimiter)
    exact = [1] + [
        line
        for line, _ in tabular.records_with_lines(data.hris.read_bytes(), table.encoding, table.delimiter)
    ]
    assert fast is not None and fast.tolist() == exact
    assert exact[-1] > len(exact)  # the data has records spanning lines


@pytest.mark.parametrize("piece_bytes", [1, 2, 7, 8 << 20])
def test_line_count_agrees_with_the_csv_module_and_refuses_a_lone_cr(tmp_path, monkeypatch, piece_bytes):
    """count_lines (numpy over pieces of one reused buffer) counts lines as the csv module does, a CRLF
    cut between two pieces included, and gives None for a lone CR wherever it falls."""
    monkeypatch.setattr(csv_lines, "SCAN_BYTES", piece_bytes)
    rng = random.Random(piece_bytes)
    for case in range(60):
        parts = [rng.choice(["a", "bc", ",", "\n", "\r\n", "\r\n", '"x"']) for _ in range(rng.randint(0, 12))]
        lone_cr = case % 3 == 0
        if lone_cr:
            parts.insert(rng.randint(0, len(parts)), "\rz" if rng.random() < 0.5 else "\r")
        text = "".join(parts)
        path = tmp_path / f"c{case}.csv"
        path.write_bytes(text.encode())
        expected = None if "\r" in text.replace("\r\n", "") else len(text.splitlines())
        assert csv_lines.count_lines(path, "utf-8") == expected, repr(text)


# --- generated addresses: every address a mail system accepts is kept; a rejected row keeps its person ---

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
NON_ASCII = "äöüßéèñøåçłżœÄÖÜÉÑØÅжёщдЖДαβγΑΒ中文日本हि"  # lower-cased alike by Python and arrow
IDN_LABELS = ["bücher", "ö", "müller", "例え", "россия", "straße", "café", "ελλάδα"]
TLDS = ["com", "de", "co.uk", "рф", "xn--p1ai", "io"]


def _local(rng: random.Random) -> str:
    if rng.random() < 0.1:  # a quoted local part: spaces, specials and escaped quotes inside
        inner = "".join(rng.choice(ATEXT + " .@(),:;<>[]" + NON_ASCII) for _ in range(rng.randint(1, 10)))
        return '"' + inner + rng.choice(["", '\\"', "\\\\"]) + '"'
    alphabet = ATEXT * 3 + NON_ASCII if rng.random() < 0.5 else ATEXT
    atoms = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(1, 3))
    ]
    return ".".join(atoms)


def _domain(rng: random.Random) -> str:
    labels = []
    for _ in range(rng.randint(1, 2)):
        if rng.random() < 0.4:
            labels.append(rng.choice(IDN_LABELS))
        else:
            inner = "".join(
                rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(rng.randint(0, 10))
            )
            labels.append(rng.choice("abcxyz") + inner.strip("-") + rng.choice("kmz0"))
    return ".".join([*labels, rng.choice(TLDS)])


def _other_spelling(rng: random.Random, address: str) -> str:
    """The same mailbox as another system writes it: case, IDNA form of the domain, spaces around."""
    local, _, domain = address.rpartition("@")
    labels = domain.split(".")
    if rng.random() < 0.5:  # punycode
        labels = [label if label.isascii() else idna.encode(label).decode() for label in labels]
    else:  # Unicode
        labels = [idna.decode(label) if label.startswith("xn--") else label for label in labels]
    domain = ".".join(labels)
    spelled = f"{local}@{domain}"
    spelled = spelled.upper() if rng.random() < 0.3 and spelled.isascii() else spelled
    return rng.choice(["", " ", "  "]) + spelled + rng.choice(["", " "])


def _not_an_address(rng: random.Random, address: str) -> str:
    local, _, domain = address.rpartition("@")
    return rng.choice(
        [
            local + domain,  # no @
            f"{local}@ {domain}",  # a space
            f"{local}@",  # no domain
            f"@{domain}",  # no local part
            f"{local}@{domain.split('.')[0]}",  # one label
            f"{local}@-{domain}",  # a label starting with a hyphen
            f"{local}@{domain}..com",  # an empty label
            "",
        ]
    )


def _as_written(address: str) -> str:
    """How the review files show a value: one a spreadsheet would run as a formula gets a leading '."""
    return "'" + address if address[:1] in ("=", "+", "-", "@") else address


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _column(path: Path, name: str) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return [row[name] for row in csv.DictReader(f)]


def _addresses(rng: random.Random, count: int) -> list[str]:
    found: dict[str, str] = {}
    while len(found) < count:
        address = f"{_local(rng)}@{_domain(rng)}"
        found.setdefault(address_key(address), address)
    return list(found.values())


MAPPING = (
    "HRIS Field,HRIS Values,10KC Segment,10KC Value,Visibility\nDepartment,Sales,Department,Sales,Public\n"
)


@pytest.mark.parametrize("seed", range(6))
def test_every_generated_address_is_accepted_and_round_trips(tmp_path, seed):
    rng = random.Random(seed)
    addresses = _addresses(rng, 400)
    for address in addresses:
        assert check_email(address) == address and is_address(f" {address} ".strip())
        assert not is_address(_not_an_address(rng, address))
    (tmp_path / "mapping.csv").write_text(MAPPING, encoding="utf-8")
    hris = _write(
        tmp_path / "hris.csv",
        ["Email", "First Name", "Last Name", "Status", "Department"],
        [[a, "Ann", f"Lee{i}", "active", "Sales"] for i, a in enumerate(addresses)],
    )
    members = _write(tmp_path / "members.csv", ["Email", "First Name", "Last Name", "Status"], [])
    result = generate_files(hris, members, tmp_path / "mapping.csv", tmp_path / "out")
    assert result.summary["rejected_rows"] == 0
    assert sorted(_column(tmp_path / "out" / INVITES, "Email")) == sorted(map(_as_written, addresses))


@pytest.mark.parametrize("seed", range(3))
def test_member_keys_without_the_address_check_are_the_upload_keys(seed):
    """The member export is keyed without checking every address (only non-ASCII or xn-- rows are
    checked, for IDNA): its keys are still exactly the upload's, for addresses and non-addresses."""
    rng = random.Random(seed)
    values = []
    for address in _addresses(rng, 300):
        values += [_other_spelling(rng, address).strip(), _not_an_address(rng, address)]
    emails = pa.array(values, pa.string())
    assert address_keys(emails, validate=False)[0].to_pylist() == address_keys(emails)[0].to_pylist()


@pytest.mark.parametrize("seed", range(6))
def test_a_rejected_row_never_deletes_its_person(tmp_path, seed):
    """Members absent from the upload are deleted; a member on any row, however it is rejected, is not."""
    rng = random.Random(seed)
    addresses = _addresses(rng, 300)
    people = [(a, f"First{i}", f"Last{i}") for i, a in enumerate(addresses)]
    members, newcomers = people[:240], people[240:]
    rows, absent, kept, rejected = [], set(), set(), 0
    for address, first, last in members:
        fate = rng.choice(["absent", "same", "bad email", "bad status", "twice", "no names"])
        spelled = _other_spelling(rng, address)
        if fate == "absent":
            absent.add(address)
            continue
        kept.add(address)
        if fate in ("same", "no names"):
            rows.append([spelled, first, last, rng.choice(["active", "Active", ""])])
        elif fate == "bad email":
            rows.append([_not_an_address(rng, address), first, last, "active"])
            rejected += 1
        elif fate == "bad status":
            rows.append([spelled, first, last, rng.choice(["on leave", "terminated", "?"])])
            rejected += 1
        else:
            rows += [[spelled, first, last, "active"], [address, first, last, "active"]]
            rejected += 2
    rows += [[a, f, la, "active"] for a, f, la in newcomers]
    rng.shuffle(rows)
    (tmp_path / "mapping.csv").write_text(MAPPING, encoding="utf-8")
    hris = _write(tmp_path / "hris.csv", ["Email", "First Name", "Last Name", "Status"], rows)
    export = _write(
        tmp_path / "members.csv",
        ["Email", "First Name", "Last Name", "Status"],
        [[a, f, la, "active"] for a, f, la in members],
    )

    result = generate_files(
        hris, export, tmp_path / "mapping.csv", tmp_path / "out", allow_mass_deletion=True
    )
    out = tmp_path / "out"
    assert set(_column(out / DELETIONS, "Email")) == set(map(_as_written, absent))
    assert sorted(_column(out / INVITES, "Email")) == sorted(_as_written(a) for a, _, _ in newcomers)
    assert set(_column(out / UPDATES, "Email")) <= set(map(_as_written, kept))
    assert result.summary["rejected_rows"] == rejected
    reference = generate_files_reference(hris, export, tmp_path / "mapping.csv", tmp_path / "reference")
    for name in (INVITES, UPDATES, DELETIONS, REJECTED):
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
    assert reference["rejected_rows"] == rejected
