"""How long generated files (whole staff lists) stay on the worker: as long as a CSM needs them, no longer.

Layout kept by the flows: `<files dir>/<customer key>/<upload or sample>` — one folder (or sample
copy) per upload; an upload's folder also keeps the upload and member export it was made from
(`inputs/`, tasks/contracts.py KEPT_INPUTS: update-mapping's what-if). An entry goes when nothing
in it changed for the retention period.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

DEFAULT_RETENTION_DAYS = 30


@dataclass(frozen=True)
class Purged:
    entries: int
    bytes: int
    kept: int


def last_change(path: Path) -> float:
    """The newest modification time in a file or folder (a folder is as new as its newest file)."""
    if path.is_file() or path.is_symlink():
        return path.lstat().st_mtime
    times = [path.stat().st_mtime] + [p.lstat().st_mtime for p in path.rglob("*")]
    return max(times)


def _size(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file())


def purge_expired(
    root: Path, retention: timedelta, now: datetime, in_use: Callable[[str, str], bool] | None = None
) -> Purged:
    """Delete every upload's files under `root` unchanged for longer than `retention`, except what
    `in_use(customer key, entry name)` says unfinished work still needs.

    Customer folders left empty go too. Nothing outside `root` is followed or touched.
    """
    if retention <= timedelta(0):
        raise ValueError(f"retention must be positive, not {retention}")
    if not root.is_dir():
        return Purged(entries=0, bytes=0, kept=0)
    cutoff = (now - retention).timestamp()
    entries = size = kept = 0
    for customer in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        for entry in sorted(customer.iterdir()):
            if last_change(entry) >= cutoff or (in_use is not None and in_use(customer.name, entry.name)):
                kept += 1
                continue
            size += _size(entry)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            entries += 1
        if not any(customer.iterdir()):
            customer.rmdir()
    return Purged(entries=entries, bytes=size, kept=kept)
