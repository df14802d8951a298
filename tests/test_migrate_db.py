"""`hris-runbook backup`, `restore` and `migrate-db`: an install's state survives both.

One SQLite stack leaves what an install holds (a run suspended at a gate, an SFTP registration, a
block with a secret, an email sent with its once-record) and is backed up while it runs; the state
is wiped and restored from the backup, then moved to PostgreSQL with `migrate-db`. A stack on
PostgreSQL with the same result storage resumes the run to the end, sees the registration, and the
email is not sent again: the once-record and the Variables came back through both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import load_driver, scale, services
from tasks.contracts import CUSTOMER_CHOICE, SETUP_GUIDES, SETUP_GUIDES_EMAIL, deployment_name
from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent
LINK_SECRET = "migrated-secret-0123456789-abcdefghijklmn"


def hris_runbook(base: Path, *args: str, prefect_port: int | None = None) -> subprocess.CompletedProcess:
    """The command as an operator runs it on the stack's state folder (its server stopped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HRIS_"))} | {
        "HRIS_STATE_DIR": str(base / "server"),
        "PREFECT_LOCAL_STORAGE_PATH": str(base / "shared-results"),
        "HRIS_PREFECT_PORT": str(prefect_port or services.free_port()),
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "hris-runbook"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_sqlite_install_moved_to_postgresql_resumes_its_runs_and_sends_nothing_twice(tmp_path):
    missing = [n for n in ("initdb", "postgres") if services.postgres_bin(n) is None]
    require(not missing, f"the migration test needs {', '.join(missing)} (apt-get install postgresql)")
    from blocks import WorkOSCredentials
    from sandbox.smtp import start_smtp
    from tasks.customer import Customer
    from tasks.registry import Registration, register, registrations

    smtp = start_smtp(tmp_path / "mail", services.free_port())
    base = tmp_path / "install"
    customer = load_driver.customer(1, "migrate")
    try:
        with (
            scale.prefect_stack(None, None, workers=1, base=base) as sqlite_stack,
            scale.api(sqlite_stack.api_url),
        ):
            from prefect.deployments import run_deployment

            scale.save_smtp_block(smtp.port)
            WorkOSCredentials(api_key="sk_test_migrated", setup_links_secret=LINK_SECRET).save("default")
            watched = Customer.model_validate(customer.model_dump() | {"email_domains": ["watched.example"]})
            register(Registration(customer=watched, mode="production", mapping_link="https://sheet"))
            run = run_deployment(
                deployment_name(SETUP_GUIDES), parameters={"customer": customer.model_dump()}, timeout=0
            )
            waiting = load_driver.answer_gates(
                [run.id], {SETUP_GUIDES_EMAIL: load_driver.APPROVE}, timeout=300, stop_at=CUSTOMER_CHOICE
            )
            assert waiting.final == {f"WAITING AT {CUSTOMER_CHOICE}": 1}, waiting.errors
            port = int(sqlite_stack.api_url.split(":")[-1].split("/")[0])
            saved = hris_runbook(base, "backup", str(tmp_path / "backup.tar.gz"), prefect_port=port)
            assert saved.returncode == 0, saved.stderr  # while the server runs: SQLite's online backup
            busy = hris_runbook(base, "restore", str(tmp_path / "backup.tar.gz"), prefect_port=port)
            assert busy.returncode == 2 and busy.stderr.startswith("error: a Prefect server answers")
        assert len(smtp.handler.messages()) == 1  # the email went out before the stack stopped

        for lost in (base / "server").glob("prefect.db*"):
            lost.unlink()
        shutil.rmtree(base / "shared-results")
        restored = hris_runbook(base, "restore", str(tmp_path / "backup.tar.gz"))
        assert restored.returncode == 0, restored.stderr
        again = hris_runbook(base, "restore", str(tmp_path / "backup.tar.gz"))
        assert again.returncode == 2 and "restore replaces it only with --force" in again.stderr

        with services.postgres() as database_url:
            moved = hris_runbook(base, "migrate-db", "--to", database_url)
            assert moved.returncode == 0, moved.stderr
            assert "HRIS_DATABASE_URL" in moved.stdout and "1 work pools" in moved.stdout

            again = hris_runbook(base, "migrate-db", "--to", database_url)
            assert again.returncode == 2
            assert again.stderr.strip().startswith("error: the target database is not empty")
            assert "\n" not in again.stderr.strip()

            with scale.prefect_stack(database_url, None, workers=1, base=base, deploy=False) as pg_stack:
                port = int(pg_stack.api_url.split(":")[-1].split("/")[0])
                busy = hris_runbook(base, "migrate-db", "--to", database_url, prefect_port=port)
                assert busy.returncode == 2 and "a Prefect server answers" in busy.stderr
                with scale.api(pg_stack.api_url):
                    loaded = WorkOSCredentials.load("default")
                    assert loaded.setup_links_secret.get_secret_value() == LINK_SECRET
                    assert [r.customer.key for r in registrations()] == ["watched.example"]
                    done = load_driver.answer_gates(
                        [run.id],
                        {CUSTOMER_CHOICE: {"option": "not yet", "answered_by": "Casey Success"}},
                        timeout=300,
                    )
                    assert done.final == {"COMPLETED": 1}, done.errors + [pg_stack.log_text()[-3000:]]
        assert len(smtp.handler.messages()) == 1  # the once-record in the same result storage held
    finally:
        smtp.stop()


@pytest.mark.slow  # five runs of the command
def test_backup_restore_and_migrate_db_refuse_in_one_line_and_touch_nothing(tmp_path):
    base = tmp_path / "install"
    (base / "server").mkdir(parents=True)
    not_an_archive = tmp_path / "notes.tar.gz"
    not_an_archive.write_text("not a backup")
    cases = {
        ("migrate-db", "--to", "mysql://u:p@db/prefect"): "error: --to: expected postgresql+asyncpg://",
        ("migrate-db", "--to", "postgresql+asyncpg://u:p@127.0.0.1:1/x"): "error: no SQLite database at ",
        ("backup", str(tmp_path / "b.tar.gz")): "error: no database at ",
        ("restore", str(tmp_path / "missing.tar.gz")): "error: ",
        (
            "restore",
            str(not_an_archive),
        ): f"error: {not_an_archive}: not a backup made by `hris-runbook backup`",
    }
    for args, start in cases.items():
        done = hris_runbook(base, *args)
        assert done.returncode == 2 and done.stderr.startswith(start), (args, done.stderr)
        assert done.stderr.count("\n") == 1 and "u:p@" not in done.stderr
    assert sorted(p.name for p in base.rglob("*")) == ["server"]  # nothing written
    assert not (tmp_path / "b.tar.gz").exists()
