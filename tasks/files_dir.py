"""Where the runbook keeps files between steps: generated files for step 9 and handed-over member exports."""

from __future__ import annotations

from pathlib import Path


def files_dir() -> Path:
    """The Prefect Variable `hris_files_dir`, default `$PREFECT_HOME/hris-files` (worker and web app)."""
    from prefect.settings import PREFECT_HOME
    from prefect.variables import Variable

    return Path(Variable.get("hris_files_dir", default=str(PREFECT_HOME.value() / "hris-files")))
