"""What the project relies on in private names of Prefect and the SDKs, pinned on the installed versions.

Each private name is imported in tasks/private_apis.py (or subclassed in tasks/once_locks.py). When an upgrade
moves or changes one, the test here that names it fails, instead of a customer getting an email twice.
"""

from __future__ import annotations

import inspect
import socket
import threading

import pytest

from tests.conftest import ROOT, free_port


def test_prefect_proposes_a_paused_state_without_an_expiry():
    from prefect.states import Paused

    from tasks.private_apis import propose_state_sync

    assert {"client", "state", "flow_run_id"} <= set(inspect.signature(propose_state_sync).parameters)
    assert Paused(pause_key="apply-files").state_details.pause_timeout is None  # waits for days, never fails


def _workos(port: int, timeout: float = 30):
    """No retries: the error class pinned is the one the last attempt raises, and the SDK's backoff
    (1 s, 2 s, 4 s) would only make these tests wait."""
    from workos import WorkOSClient

    return WorkOSClient(
        api_key="sk_test_pin",
        client_id="client_pin",
        base_url=f"http://127.0.0.1:{port}/",
        request_timeout=timeout,
        max_retries=0,
    )


def test_workos_raises_its_connection_error_when_nothing_answers():
    from tasks.private_apis import WorkOSConnectionError

    with pytest.raises(WorkOSConnectionError):
        _workos(free_port()).organizations.list_organizations()


def test_workos_raises_its_timeout_error_when_the_answer_never_comes():
    from tasks.private_apis import WorkOSTimeoutError

    with socket.socket() as server:  # accepts, reads, never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        held = []
        threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
        with pytest.raises(WorkOSTimeoutError):
            _workos(server.getsockname()[1], timeout=1).organizations.list_organizations()


def test_slack_uploads_the_bytes_of_a_file_on_their_own(slack):
    from slack_sdk import WebClient

    from tasks.private_apis import slack_upload_bytes

    client = WebClient(token="xoxb-test", base_url=f"{slack.url}/api/")
    upload = client.files_getUploadURLExternal(filename="staff.csv", length=9)
    assert slack_upload_bytes(client, upload["upload_url"], b"a,b\n1,2\n\n") == 200


def test_prefects_file_lock_manager_keeps_what_our_expiring_locks_read(tmp_path):
    from prefect.locking.filesystem import FileSystemLockManager

    locks = FileSystemLockManager(tmp_path)
    assert locks.acquire_lock("once--acme.com--step.json", holder="run-1", hold_timeout=60)
    info = locks._locks["once--acme.com--step.json"]
    assert {"holder", "expiration", "path"} <= set(info)
    assert locks._get_lock_info("once--acme.com--step.json", use_cache=False)["holder"] == "run-1"
    assert callable(locks._lock_path_for_key)


def test_prefects_redis_lock_manager_names_its_keys():
    pytest.importorskip("prefect_redis", reason="the scale extra is not installed")
    from prefect_redis.locking import RedisLockManager

    assert "once--acme.com--step.json" in RedisLockManager()._lock_name_for_key("once--acme.com--step.json")


def test_the_stack_servers_sqlite_transactions_take_the_write_lock_first(tmp_path, monkeypatch):
    """cli/prefect_server.py relies on AioSqliteConfiguration.begin_transaction(session,
    with_for_update=True) beginning IMMEDIATE; Prefect's own default (DEFERRED) does not lock."""
    import asyncio
    import sqlite3

    from prefect.server.database.configurations import AioSqliteConfiguration

    from cli.prefect_server import sqlite_transactions_wait_their_turn

    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction", AioSqliteConfiguration.begin_transaction)
    path = tmp_path / "prefect.db"

    def write_lock_taken() -> bool:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            assert "database is locked" in str(exc)
            return True
        finally:
            other.close()

    async def inside_a_transaction() -> bool:
        config = AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}")
        engine = await config.engine()
        try:
            session = await config.session(engine)
            async with session:
                async with config.begin_transaction(session):
                    await session.connection()  # BEGIN is sent when the connection is taken
                    return await asyncio.to_thread(write_lock_taken)
        finally:
            await engine.dispose()

    assert asyncio.run(inside_a_transaction()) is False  # Prefect's default: DEFERRED, no lock yet
    sqlite_transactions_wait_their_turn()
    sqlite_transactions_wait_their_turn()  # twice is once
    assert asyncio.run(inside_a_transaction()) is True


def test_the_test_harness_server_command_is_the_one_conftest_reproduces():
    """tests/conftest.py runs the session's server with cli.prefect_server's app by overriding
    SubprocessASGIServer._run_uvicorn_command; it copies Prefect's command and environment."""
    import inspect

    import prefect.testing.utilities as harness
    from prefect.server.api.server import SubprocessASGIServer

    source = inspect.getsource(SubprocessASGIServer._run_uvicorn_command)
    for part in (
        '"prefect.server.api.server:create_app"',
        '"PREFECT__SERVER_EPHEMERAL": "1"',
        '"--lifespan"',
    ):
        assert part in source
    assert "exclude_unset=True" in source and "SubprocessASGIServer(port=" in inspect.getsource(
        harness.prefect_test_harness
    )


def test_prefects_events_worker_warns_at_exit_on_the_logger_the_cli_quiets():
    """`hris-runbook` commands quiet the logger named "EventsWorker" (cli/main.py): Prefect's events
    worker says "Still processing items" there when a slow machine exits with events unsent."""
    from prefect._internal.concurrency.services import QueueService
    from prefect.events.clients import NullEventsClient
    from prefect.events.worker import EventsWorker

    assert "Still processing items" in inspect.getsource(QueueService._main_loop)
    assert EventsWorker(NullEventsClient, ())._logger.name == "EventsWorker"


def test_a_command_s_one_line_answer_stays_one_line_when_events_are_still_being_sent():
    """What the CI run saw under load: the refusal's one line, then Prefect's exit-time warning."""
    import subprocess
    import sys

    script = (
        "import logging, cli.main\n"
        "cli.main.quiet_event_shutdown()\n"
        "from prefect.logging.configuration import setup_logging\n"
        "setup_logging()\n"
        "logging.getLogger('EventsWorker').warning('Still processing items: 1 items remaining...')\n"
        "logging.getLogger('EventsWorker').error('a real failure still shows')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Still processing items" not in done.stderr + done.stdout
    assert "a real failure still shows" in done.stderr + done.stdout
