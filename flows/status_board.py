"""`status-board`: the board of every customer as a table artifact, refreshed on a schedule."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from tasks.status_board import build_board


@flow(name="status-board")
def status_board() -> int:
    """Publish the `status-board` table: one row per customer, what needs a person first."""
    rows = build_board()
    waiting = sum(row.needs_a_person for row in rows)
    create_table_artifact(
        key="status-board",
        table=[row.as_table_row() for row in rows] or [{"customer": "no customers yet"}],
        description=f"{len(rows)} customer(s), {waiting} needing a person",
    )
    get_run_logger().info("Status board: %d customer(s), %d needing a person", len(rows), waiting)
    return len(rows)
