"""The process `hris-runbook generate-files` runs in: set up for the file engine alone, before numpy
and pyarrow are imported (docs/performance.md, issue 24)."""

from __future__ import annotations

import gc
import os
import sys


class _NoPandas:
    """An import finder that says pandas is not installed. pyarrow imports pandas, when it is, at its
    first numpy conversion (~0.2 s of a ~1.8 s run) to check for pandas objects the engine never has."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r} (the engine runs without it)", name=name)


def engine_only_process() -> None:
    """Set up a process that runs only the file engine, before numpy is imported: no pandas, one
    OpenBLAS thread (it does no linear algebra; idle BLAS threads spin on the cores the engine uses)
    and no cyclic garbage collector (a one-shot process: what it leaves is freed at exit; its scans
    cost ~30 ms a run)."""
    gc.disable()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if "pandas" not in sys.modules and not any(isinstance(f, _NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())
