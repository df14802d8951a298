"""summary.json names the HRIS rows once (`hris_rows`); summaries written before, which also had `rows`,
still read the same wherever the count is used (stored data is an interface)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tasks.files import counts_in_words
from tasks.upload_history import APPLIED, Upload, summary_rows, unusual, upload_table
from tests.test_files import HEADER, run

# summary.json as generate-files wrote it before (92abfc7): the rows under both names
OLD_SUMMARY = {
    "rows": 100,
    "invites": 1,
    "updates": 0,
    "deletions": 0,
    "deactivations": 0,
    "reactivations": 0,
    "rejected_rows": 0,
    "unmapped_values": [],
    "deletion_guard": {"tripped": False, "allowed": False, "max_deletion_pct": 20, "deletions": 0,
                       "members": 120, "deletion_pct": 0.0},
    "hris_rows": 100,
    "members": 120,
    "missing_columns": [],
    "renamed_columns": [],
    "status_column": True,
    "notes": [],
}  # fmt: skip
# and before the board charted rows (issue 25): `hris_rows` only
OLDEST_SUMMARY = {k: v for k, v in OLD_SUMMARY.items() if k != "rows"}


def test_a_new_summary_names_the_hris_rows_once(tmp_path):
    summary, out = run(tmp_path, HEADER + "new@acme.com,New,Person,active,Sales,Paris\n")
    written = json.loads((out / "summary.json").read_text())
    assert written["hris_rows"] == 1 and "rows" not in written and written == summary
    assert upload_table("staff.csv", "c.csv", "#m", written)[0]["rows"] == 1  # as the board charts it


def test_old_summaries_read_the_same_as_new_ones(tmp_path):
    last = Upload(datetime(2026, 11, 1, tzinfo=UTC), "before.csv", rows=200, invites=0, updates=0,
                  deletions=0, decision=APPLIED)  # fmt: skip
    for old in (OLD_SUMMARY, OLDEST_SUMMARY):
        assert summary_rows(old) == 100
        assert upload_table("staff.csv", "c.csv", "#m", old)[0]["rows"] == 100
        assert counts_in_words(old).startswith("100 HRIS rows compared with 120 hub members")
        [check] = unusual(old, [last])  # half the rows of the last applied upload
        assert "100 rows, 50% fewer than the 200" in check.markdown
    assert upload_table("staff.csv", "c.csv", "#m", {**OLDEST_SUMMARY, "hris_rows": "?"})[0]["rows"] == ""
