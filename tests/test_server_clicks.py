"""A CSM's Submit and Resume on the SQLite Prefect server `make up` starts, while other writers keep
it busy (the worker and flow runs of `bench-load`, the scheduler filling schedules at start): never
a 503 "database is locked" (issue 22). benchmarks/sqlite_clicks.py drives it; the server is started
with cli/stack.py's own settings and command, so this tests what `make up` runs."""

from __future__ import annotations

import pytest

from benchmarks.sqlite_clicks import measure
from tests.conftest import free_port


@pytest.mark.slow  # its own Prefect server
@pytest.mark.timeout(600)  # its own server's start, then 25 s of clicks: minutes on a busy machine
def test_a_csms_submit_and_resume_are_never_refused_while_the_sqlite_server_is_busy():
    result = measure(free_port(), writers=12, seconds=25, clicks=10)
    row = result.row()
    # the server really was busy with other writers: they kept writing (how many writes fit in the
    # 25 s depends on how busy the machine is, so no count of them is asked for)
    assert result.writers[201] > 12 and result.writers[201] > result.writers.total() / 2, row
    assert result.refused == 0, row  # the UI never showed "Unknown error" (503) for a click
    assert result.submits == {201: 10}, row  # every Submit created its run
    assert result.resumes == {201: 10} and result.resumed == 10, row  # every Resume left Suspended
    assert result.writers[503] == 0, row  # nor was a worker's or flow run's request refused
    assert result.locked_in_log == 0, row
