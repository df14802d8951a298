"""State survives `make clean`; the bind address and public URL settings reach every link."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _checkout(tmp_path: Path) -> Path:
    """A copy of the Makefile with a venv and state, as after `make up`."""
    work = tmp_path / "checkout"
    work.mkdir()
    shutil.copy(ROOT / "Makefile", work / "Makefile")
    for folder in (".venv/bin", ".prefect/storage", ".sandbox/mail"):
        (work / folder).mkdir(parents=True)
    (work / ".prefect" / "prefect.db").write_text("blocks, variables, waiting runs")
    return work


def test_make_clean_keeps_the_state_and_clean_all_deletes_it_after_a_warning(tmp_path):
    work = _checkout(tmp_path)
    done = subprocess.run(["make", "clean"], cwd=work, capture_output=True, text=True, check=True)
    assert not (work / ".venv").exists()
    assert (work / ".prefect" / "prefect.db").exists() and (work / ".sandbox" / "mail").exists()
    assert "kept .prefect/ and .sandbox/" in done.stdout

    done = subprocess.run(
        ["make", "clean-all", "YES=1"], cwd=work, capture_output=True, text=True, check=True
    )
    assert "WARNING: deleting .prefect/ and .sandbox/" in done.stdout
    assert not (work / ".prefect").exists() and not (work / ".sandbox").exists()


SHOW = """
from cli.stack import configure_environment
settings = configure_environment()
from tasks.gate_notices import run_link
print(settings["PREFECT_SERVER_API_HOST"], settings["PREFECT_API_URL"], settings["PREFECT_UI_API_URL"])
print(run_link("0b5c"))
"""


def _settings(tmp_path: Path, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HRIS_"))}
    clean |= {"HRIS_STATE_DIR": str(tmp_path / "state"), "HRIS_PREFECT_PORT": "4321", **env}
    done = subprocess.run(
        [sys.executable, "-c", SHOW], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_public_url_is_in_every_run_link_and_the_server_binds_where_told(tmp_path):
    assert _settings(tmp_path) == [
        "127.0.0.1 http://127.0.0.1:4321/api http://127.0.0.1:4321/api",
        "http://127.0.0.1:4321/runs/flow-run/0b5c",
    ]
    assert _settings(tmp_path, HRIS_BIND_HOST="0.0.0.0", HRIS_PUBLIC_URL="https://hris.10kc.com/") == [
        "0.0.0.0 http://127.0.0.1:4321/api https://hris.10kc.com/api",  # our processes stay on loopback
        "https://hris.10kc.com/runs/flow-run/0b5c",
    ]
