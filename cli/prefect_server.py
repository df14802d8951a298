"""The Prefect server `make up` runs: Prefect's own `prefect server start`, with every SQLite write
transaction waiting its turn instead of answering 503 "database is locked".

Prefect 3.9 opens most of its server transactions on SQLite as `BEGIN DEFERRED`: they read first and
take the write lock only at their first write. When another connection commits in between (the
worker, a flow-run process, the scheduler, the event persister), SQLite refuses the upgrade at once
with SQLITE_BUSY_SNAPSHOT, without waiting (the 60 s busy timeout Prefect sets does not apply to
it), and Prefect answers that request 503 "Service Unavailable". A CSM's Submit
(`POST /deployments/{id}/create_flow_run`) and Resume (`POST /flow_runs/{id}/resume`) are two such
transactions. Here every transaction the server opens starts as `BEGIN IMMEDIATE` (as Prefect
already does for state changes): it takes the write lock first and, while another writer holds it,
waits for it under the busy timeout. Reads outside transactions stay concurrent (WAL).

PostgreSQL (`HRIS_DATABASE_URL`) is untouched: the flag only means something to SQLite.

    python -m cli.prefect_server start [prefect server start options]
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


def sqlite_transactions_wait_their_turn() -> None:
    """Every SQLite transaction of this process's Prefect server begins IMMEDIATE (idempotent).

    Relies on AioSqliteConfiguration.begin_transaction(session, with_for_update) choosing
    IMMEDIATE for with_for_update=True (pinned by tests/test_private_apis.py)."""
    from prefect.server.database.configurations import AioSqliteConfiguration

    original = AioSqliteConfiguration.begin_transaction
    if getattr(original, "_hris_immediate", False):
        return

    @asynccontextmanager
    async def begin_transaction(self: Any, session: Any, with_for_update: bool = False) -> AsyncIterator[Any]:
        async with original(self, session, with_for_update=True) as transaction:
            yield transaction

    begin_transaction._hris_immediate = True  # type: ignore[attr-defined]
    AioSqliteConfiguration.begin_transaction = begin_transaction  # type: ignore[method-assign]


def create_app() -> Any:
    """Prefect's server app with the change above, for `uvicorn --factory` (the tests' server)."""
    from prefect.server.api.server import create_app as prefect_app

    sqlite_transactions_wait_their_turn()
    return prefect_app()


def main(argv: list[str] | None = None) -> None:
    """`prefect server start` (the same options) in this process, with the change above."""
    from prefect.cli import app

    sqlite_transactions_wait_their_turn()
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["start"]:
        args = args[1:]
    sys.argv = [sys.argv[0], "server", "start", *args]  # Prefect's CLI reads its arguments there
    app()


if __name__ == "__main__":
    main()
