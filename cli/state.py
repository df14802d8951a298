"""The state in `.prefect/` that must survive: `backup`, `restore` and `migrate-db`.

What is state: the Prefect database (Blocks with their secrets, Variables with every SFTP
registration and `hris_*` setting, deployments, the work pool, runs waiting for a person with their
run inputs) and the result storage (the once-records: an email sent, a post made), plus the rest
of `.prefect/` (generated files). The database alone is not enough: without the result storage a
re-run sends the emails again.

- `backup`: the SQLite database through SQLite's online backup API (a consistent copy even while
  the server writes), then the result storage and the rest of `.prefect/`, into one .tar.gz. The
  database is copied first: a once-record written meanwhile is in the archive even if the run that
  wrote it is not, so a restored run finds it and does not act again (the other order could lose
  the record of a side effect that happened).
- `restore`: the archive back into `.prefect/` (and the result storage path), refusing while a
  server answers or when state is already there, unless `--force`.
- `migrate-db`: every table of the SQLite database into an empty PostgreSQL database, after
  `prefect server database upgrade` created Prefect's schema there (and brought the SQLite one to
  the same Prefect version, as a server start would): rows are read and written with
  Prefect's own table definitions (prefect.server.database.orm_models), parents before children;
  the few foreign keys that form cycles (a run's current state, a work pool's default queue) are
  filled in once every row is there. Result storage is a path and stays where it is.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

DATABASE_FILE = "prefect.db"
ARCHIVE_FORMAT = "hris-runbook-backup-1"
# Not state: recreated on start (locks expire; logs are the processes' output).
DATABASE_FILES = tuple(DATABASE_FILE + suffix for suffix in ("", "-wal", "-shm", "-journal"))
NOT_STATE = {"locks", "logs", *DATABASE_FILES}
# Rows here mean the database is in use: migrate-db never writes over them. Block types and
# schemas are not among them: a server registers its own on start.
USER_TABLES = ("flow", "flow_run", "deployment", "block_document", "variable", "work_pool", "artifact")
CHUNK = 500


class StateRefused(Exception):
    """A one-line reason why backup, restore or migrate-db did nothing."""


def home() -> Path:
    return Path(os.environ["PREFECT_HOME"])


def storage() -> Path:
    return Path(os.environ["PREFECT_LOCAL_STORAGE_PATH"])


def sqlite_path() -> Path:
    """The SQLite database the local stack runs on (`.prefect/prefect.db`)."""
    return home() / DATABASE_FILE


def _refuse_running_server() -> None:
    from cli.stack import healthy

    api = os.environ["PREFECT_API_URL"]
    if healthy(api):
        raise StateRefused(
            f"a Prefect server answers at {api.removesuffix('/api')}: stop `make up` (Ctrl-C) first, so "
            "nothing writes to the database meanwhile"
        )


def _refuse_postgresql(what: str) -> None:
    if os.environ.get("PREFECT_SERVER_DATABASE_CONNECTION_URL", "").startswith("postgresql"):
        raise StateRefused(
            f"HRIS_DATABASE_URL is PostgreSQL: {what} covers the SQLite install only; back PostgreSQL up "
            "with pg_dump, and the result storage ({storage()}) with it"
        )


# ---------------------------------------------------------------------------------------------- backup


def backup(archive: Path) -> str:
    """Write `archive` (.tar.gz): the database (online backup API), the result storage, the rest of home."""
    _refuse_postgresql("backup")
    database = sqlite_path()
    if not database.is_file():
        raise StateRefused(f"no database at {database}: nothing to back up")
    archive = archive.resolve()
    if archive.exists():
        raise StateRefused(f"{archive} exists: choose a new file name")
    with tempfile.TemporaryDirectory(prefix="hris-backup-") as tmp:
        copy = Path(tmp) / DATABASE_FILE
        source = sqlite3.connect(database, timeout=60)  # only read: the backup API copies its pages
        target = sqlite3.connect(copy)
        try:
            source.backup(target)  # consistent even while the server writes
        finally:
            target.close()
            source.close()
        partial = archive.with_name(archive.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            marker = Path(tmp) / "FORMAT"
            marker.write_text(ARCHIVE_FORMAT + "\n")
            tar.add(marker, "FORMAT")
            tar.add(copy, f"database/{DATABASE_FILE}")  # first: see the module's docstring
            if storage().is_dir():
                tar.add(storage(), "storage")
            for entry in sorted(home().iterdir()):
                if entry.name in NOT_STATE or entry.resolve() == storage().resolve():
                    continue
                tar.add(entry, f"home/{entry.name}")
        partial.rename(archive)
    records = sum(1 for p in storage().rglob("*") if p.is_file()) if storage().is_dir() else 0
    return f"backed up {database} and {records} result-storage files into {archive}"


# --------------------------------------------------------------------------------------------- restore


def _has_state() -> list[str]:
    found = []
    if sqlite_path().exists():
        found.append(str(sqlite_path()))
    if storage().is_dir() and any(storage().iterdir()):
        found.append(str(storage()))
    return found


def restore(archive: Path, force: bool = False) -> str:
    """Put a `backup` archive back: the database, the result storage and the rest of home."""
    _refuse_postgresql("restore")
    if not archive.is_file():
        raise StateRefused(f"{archive}: no such file")
    _refuse_running_server()
    try:
        tar = tarfile.open(archive, "r:gz")
    except (tarfile.TarError, OSError) as exc:
        raise StateRefused(f"{archive}: not a backup made by `hris-runbook backup` ({exc})") from None
    with tar:
        names = tar.getnames()
        if "FORMAT" not in names or f"database/{DATABASE_FILE}" not in names:
            raise StateRefused(f"{archive}: not a backup made by `hris-runbook backup`")
        existing = _has_state()
        if existing and not force:
            raise StateRefused(
                f"state already there ({', '.join(existing)}): restore replaces it only with --force"
            )
        with tempfile.TemporaryDirectory(prefix="hris-restore-", dir=home().parent) as tmp:
            if not hasattr(tarfile, "data_filter"):  # Python before 3.11.4: no safe extraction
                raise StateRefused("restore needs Python 3.11.4 or later (safe archive extraction)")
            tar.extractall(tmp, filter="data")
            unpacked = Path(tmp)
            home().mkdir(parents=True, exist_ok=True)
            for name in DATABASE_FILES:
                (home() / name).unlink(missing_ok=True)
            if storage().exists():
                shutil.rmtree(storage())
            shutil.move(unpacked / "database" / DATABASE_FILE, sqlite_path())
            if (unpacked / "storage").is_dir():
                storage().parent.mkdir(parents=True, exist_ok=True)
                shutil.move(unpacked / "storage", storage())
            if (unpacked / "home").is_dir():
                for entry in (unpacked / "home").iterdir():
                    target = home() / entry.name
                    if target.is_dir():
                        shutil.rmtree(target)
                    elif target.exists():
                        target.unlink()
                    shutil.move(entry, target)
    return f"restored {sqlite_path()} and {storage()} from {archive}; start with `make up`"


# ------------------------------------------------------------------------------------------ migrate-db


def _upgrade_schema(url: str) -> None:
    """Prefect's own schema (its alembic migrations) in the target database."""
    env = os.environ | {"PREFECT_SERVER_DATABASE_CONNECTION_URL": url}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "server", "database", "upgrade", "-y"],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise StateRefused(f"could not create Prefect's tables in the target: {last[0]}")


async def _count(connection, table) -> int:
    import sqlalchemy as sa

    return (await connection.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


async def _copy(source_url: str, target_url: str) -> dict[str, int]:
    import sqlalchemy as sa
    from prefect.server.database.orm_models import Base
    from sqlalchemy.ext.asyncio import create_async_engine

    tables = [t for t in Base.metadata.sorted_tables]
    # Foreign keys that close a cycle (use_alter): written as NULL first, set once every row exists.
    deferred = {
        t.name: [c.name for c in t.columns if any(fk.use_alter for fk in c.foreign_keys)] for t in tables
    }
    source = create_async_engine(source_url)
    target = create_async_engine(target_url)
    copied: dict[str, int] = {}
    try:
        async with source.connect() as read, target.begin() as write:
            in_use = [t.name for t in tables if t.name in USER_TABLES and await _count(write, t)]
            if in_use:
                raise StateRefused(
                    f"the target database is not empty (rows in {', '.join(in_use)}): migrate into a new, "
                    "empty database"
                )
            for table in reversed(tables):  # what a server registered on start (block types, schemas)
                await write.execute(table.delete())
            for table in tables:
                later = deferred[table.name]
                rows = await read.stream(sa.select(table))
                count = 0
                async for batch in rows.mappings().partitions(CHUNK):
                    values = [dict(row) | {name: None for name in later} for row in batch]
                    await write.execute(table.insert(), values)
                    count += len(values)
                copied[table.name] = count
            for table in tables:
                later = deferred[table.name]
                if not later:
                    continue
                key = list(table.primary_key.columns)[0]
                query = sa.select(key, *(table.c[n] for n in later))
                for row in (await read.execute(query)).all():
                    values = dict(zip(later, row[1:], strict=True))
                    if any(v is not None for v in values.values()):
                        await write.execute(table.update().where(key == row[0]).values(**values))
    finally:
        await source.dispose()
        await target.dispose()
    return copied


def migrate_db(target_url: str, source: Path | None = None) -> str:
    """Copy the SQLite install into an empty PostgreSQL database; the lines to tell the operator."""
    target_url = target_url.strip()
    if not target_url.startswith("postgresql+asyncpg://"):
        raise StateRefused(
            f"--to: expected postgresql+asyncpg://user:password@host:5432/database, got "
            f"{target_url.split('://')[0]}://…"
        )
    database = (source or sqlite_path()).resolve()
    if not database.is_file():
        raise StateRefused(f"no SQLite database at {database}: nothing to migrate")
    _refuse_running_server()
    source_url = f"sqlite+aiosqlite:///{database}"
    _upgrade_schema(source_url)  # as the server does on start: both at this Prefect version's schema
    _upgrade_schema(target_url)
    try:
        copied = asyncio.run(_copy(source_url, target_url))
    except StateRefused:
        raise
    except Exception as exc:  # the driver's error, in one line (the URL's password is never in it)
        line = f"the copy failed and no row was kept: {type(exc).__name__}: {exc}".splitlines()[0]
        raise StateRefused(line) from None
    shown = target_url.split("@")[-1]
    return "\n".join(
        [
            f"copied {database} into {shown}: {copied.get('block_document', 0)} blocks, "
            f"{copied.get('variable', 0)} variables, {copied.get('deployment', 0)} deployments, "
            f"{copied.get('flow_run', 0)} flow runs, {copied.get('work_pool', 0)} work pools",
            f"result storage stays at {storage()} (the once-records): every worker must keep using it",
            "now run the stack on it: HRIS_DATABASE_URL='<the --to URL>' make up",
        ]
    )
