"""Hostile and unusual input for the file engine: huge fields, runaway spreadsheets, Excel's
"Unicode Text", and the CLI staying free of Prefect. Each runs the real CLI in a subprocess."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from tasks.tabular import record_start_lines
from tests.test_files import HEADER, MAPPING, MEMBERS, ROOT, cli, cli_args, emails, rows, write

BIG = "x" * 200_000  # over the csv module's 128 KiB field limit


def test_a_field_over_128_kib_is_accepted_and_rejected_rows_keep_their_lines(tmp_path):
    hris = write(
        tmp_path,
        "hris.csv",
        HEADER
        + f'new@acme.com,"Long\n{BIG}",Name,active,Sales,Paris\n'  # lines 2-3
        + "not-an-email,Bad,Email,active,Sales,Paris\n",  # line 4
    )
    mapping = write(
        tmp_path,
        "map.csv",
        MAPPING.replace("Org,Department,Engineering,,", f"Org,Department,Engineering,{BIG},"),
    )
    done = cli(*cli_args(tmp_path, hris, mapping=mapping), "--allow-mass-deletion")
    assert done.returncode == 0, done.stderr
    assert rows(tmp_path / "out" / "rejected rows.csv") == [
        {"Line": "4", "Email": "not-an-email", "Reason": "invalid email"}
    ]
    assert f'"new@acme.com","Long\n{BIG}","Name"' in (tmp_path / "out" / "potential invites.csv").read_text()


def test_a_ragged_row_after_a_huge_field_is_named_by_its_line(tmp_path):
    members = write(
        tmp_path,
        "members.csv",
        MEMBERS
        + f'big@acme.com,"{BIG}",B,active,Sales,Paris\n'
        + "x@acme.com,X\n"
        + "y@acme.com,Y,Z,active,Sales,Paris\n",
    )  # a ragged row inside the file (a short *last* row is a cut-off file: test_upload_order.py)
    hris = write(tmp_path, "hris.csv", HEADER + "new@acme.com,N,P,active,Sales,Paris\n")
    done = cli(*cli_args(tmp_path, hris, members=members))
    assert done.returncode == 2
    assert "member export (members.csv): line 9 has 2 fields where the header has 6" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def _stray_cell_mapping(tmp_path: Path, row: int, column: int) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(
        ["Category", "HRIS Field", "HRIS Values", "Notes", "10KC Segment", "10KC Value", "Visibility"]
    )
    sheet.append(["Org", "Department", "Sales", None, None, None, "Public"])
    sheet.cell(row=row, column=column, value="stray")
    book.save(tmp_path / "map.xlsx")
    return tmp_path / "map.xlsx"


def test_an_xlsx_with_a_stray_cell_far_away_is_refused_quickly(tmp_path):
    mapping = _stray_cell_mapping(tmp_path, row=1_048_576, column=16_384)
    assert mapping.stat().st_size < 10_000
    hris = write(tmp_path, "hris.csv", HEADER + "new@acme.com,N,P,active,Sales,Paris\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "generate-files", *cli_args(tmp_path, hris, mapping=mapping)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 20, (
        f"{cpu:.1f} s of CPU"
    )  # quickly, however busy the machine: a 17-billion-cell grid is never read
    assert done.returncode == 2
    assert "mapping table (map.xlsx): the first sheet reaches cell XFD1048576" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_xlsx_with_a_stray_cell_near_the_table_still_reads(tmp_path):
    mapping = _stray_cell_mapping(tmp_path, row=40, column=12)
    hris = write(tmp_path, "hris.csv", "Email,Department\nnew@acme.com,sales\n")
    done = cli(*cli_args(tmp_path, hris, write(tmp_path, "m.csv", "Email,Department\n"), mapping))
    assert done.returncode == 0, done.stderr
    assert rows(tmp_path / "out" / "potential invites.csv") == [
        {"Email": "new@acme.com", "First Name": "", "Last Name": "", "Department": "Sales"}
    ]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_excel_unicode_text_is_read_like_csv(tmp_path, codec):
    """Excel's "Unicode Text": UTF-16 with a BOM, tab-delimited, CRLF; for the upload and the export."""

    def unicode_text(name: str, text: str) -> Path:
        data = "\ufeff" + text.replace(",", "\t").replace("\n", "\r\n").replace("¶", "\n")
        (tmp_path / name).write_bytes(data.encode(codec))
        return tmp_path / name

    hris = unicode_text(
        "hris.txt",
        HEADER
        + "zoë@acme.com,Zoë,Müller,active,Sales,Paris\n"  # line 2
        + 'ann@acme.com,"Ann¶Marie",Lee,active,Engineering,London\n'  # lines 3-4
        + "not-an-email,Bad,Email,active,Sales,Paris\n",  # line 5
    )
    members = unicode_text("members.txt", MEMBERS)
    done = cli(*cli_args(tmp_path, hris, members), "--allow-mass-deletion")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    assert emails(out / "potential invites.csv") == ["zoë@acme.com"]
    assert rows(out / "profile updates.csv")[0]["First Name"] == "Ann\nMarie"
    assert rows(out / "rejected rows.csv") == [
        {"Line": "5", "Email": "not-an-email", "Reason": "invalid email"}
    ]
    assert len(rows(out / "profile deletions.csv")) == 5


def test_rejected_lines_stay_exact_with_a_quote_inside_an_unquoted_field(tmp_path):
    """A stray quote defeats the fast line scan; the exact scan takes over."""
    _, out = _run_cli(
        tmp_path,
        HEADER
        + 'new@acme.com,Bob "Bobby,Smith",active,Sales,Paris\n'  # line 2: quotes are literal here
        + 'ann@acme.com,"Ann\nMarie",Lee,active,Engineering,London\n'  # lines 3-4
        + "\r\n"  # line 5: blank
        + "not-an-email,Bad,Email,active,Sales,Paris\n",  # line 6
    )
    assert rows(out / "rejected rows.csv") == [
        {"Line": "6", "Email": "not-an-email", "Reason": "invalid email"}
    ]
    assert rows(out / "potential invites.csv")[0]["First Name"] == 'Bob "Bobby'
    assert record_start_lines(tmp_path / "hris.csv", "utf-8", ",") is None  # it was the exact scan


def test_rejected_lines_count_newlines_in_columns_the_engine_does_not_read(tmp_path):
    _, out = _run_cli(
        tmp_path,
        "Email,Address,Employee Status\n"
        + 'new@acme.com,"1 High St\nLondon",active\n'  # lines 2-3; Address is not read
        + "odd@acme.com,nowhere,retired\n",  # line 4
    )
    assert rows(out / "rejected rows.csv") == [
        {"Line": "4", "Email": "odd@acme.com", "Reason": "status 'retired' is not active or inactive"}
    ]


def _run_cli(tmp_path, hris_text: str):
    done = cli(*cli_args(tmp_path, write(tmp_path, "hris.csv", hris_text)), "--allow-mass-deletion")
    assert done.returncode == 0, done.stderr
    return done, tmp_path / "out"


NO_PREFECT = """
import sys
from cli.main import main
code = main(sys.argv[1:])
for package in ("prefect", "pydantic", "jinja2"):  # each costs start-up time the engine does not need
    loaded = sorted(name for name in sys.modules if name == package or name.startswith(package + "."))
    print(f"{package} modules:", len(loaded))
sys.exit(code)
"""


def test_generate_files_runs_without_importing_prefect(tmp_path):
    """Prefect takes ~1 s to import, pydantic and jinja2 ~0.1 s; the CLI needs none of them (nor does
    a rejected row or an xlsx)."""
    mapping = _stray_cell_mapping(tmp_path, row=5, column=9)
    hris = write(
        tmp_path, "hris.csv", HEADER + 'a@acme.com,"A\nB",C,active,Sales,Paris\nbad,B,C,active,Sales,Paris\n'
    )
    done = subprocess.run(
        [sys.executable, "-c", NO_PREFECT, "generate-files", *cli_args(tmp_path, hris, mapping=mapping), "--allow-mass-deletion"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 rejected rows" in done.stdout
    assert "prefect modules: 0" in done.stdout
    assert "pydantic modules: 0" in done.stdout and "jinja2 modules: 0" in done.stdout


FAKE_PANDAS = """
import os
open(os.environ["PANDAS_IMPORTED"], "w").close()
__version__ = "1.0"  # too old for pyarrow: it warns and goes on without pandas
"""


def _with_fake_pandas(tmp_path: Path) -> dict[str, str]:
    """An environment where `import pandas` succeeds and leaves a marker file."""
    (tmp_path / "fake" / "pandas").mkdir(parents=True)
    (tmp_path / "fake" / "pandas" / "__init__.py").write_text(FAKE_PANDAS)
    import os

    return {**os.environ, "PYTHONPATH": str(tmp_path / "fake"), "PANDAS_IMPORTED": str(tmp_path / "imported")}


def test_pyarrow_imports_pandas_when_installed_at_its_first_numpy_conversion(tmp_path):
    """Why the engine's process keeps pandas out: pyarrow loads it (~0.2 s) to check for pandas objects."""
    env = _with_fake_pandas(tmp_path)
    code = "import pyarrow as pa; pa.array([1, 2]).to_numpy()"
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "imported").exists()


def test_generate_files_never_loads_pandas_even_when_installed(tmp_path):
    """The CLI's engine process says pandas is absent: same files, no 0.2 s import."""
    hris = write(
        tmp_path, "hris.csv", HEADER + 'a@acme.com,"A\nB",C,active,Sales,Paris\nbad,B,C,active,Sales,Paris\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "generate-files", *cli_args(tmp_path, hris), "--allow-mass-deletion"],
        cwd=ROOT, env=_with_fake_pandas(tmp_path), capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 rejected rows" in done.stdout
    assert not (tmp_path / "imported").exists()
