"""What an engineer would write instead of the file engine, doing only the bare job: read both
files, key on the trimmed lower-case email, two anti-joins and a join, write three CSVs — none of
the runbook's rules (statuses, rejected rows, mapping, name changes). The yardsticks `make bench`
holds the engine against (issue 24), each run as its own process:

    python -m benchmarks.anchors polars|duckdb|pandas FOLDER   # FOLDER holds hris.csv, members.csv

Prints the three row counts as JSON; the files go to FOLDER/out-<anchor>/. The packages are the
`bench` extra (`pip install -e '.[bench]'`), never runtime dependencies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def polars_join(folder: Path, out: Path) -> dict[str, int]:
    import polars as pl

    def read(name: str) -> pl.DataFrame:
        frame = pl.read_csv(folder / name, infer_schema=False, encoding="utf8")
        email = frame.columns[0]  # the first column; a BOM may cling to its name
        return frame.with_columns(pl.col(email).str.strip_chars().str.to_lowercase().alias("_key"))

    hris, members = read("hris.csv"), read("members.csv")
    invites = hris.join(members.select("_key"), on="_key", how="anti")
    deletions = members.join(hris.select("_key"), on="_key", how="anti")
    updates = hris.join(members.select("_key"), on="_key", how="semi")
    for name, frame in (("invites", invites), ("updates", updates), ("deletions", deletions)):
        frame.drop("_key").write_csv(out / f"{name}.csv")
    return {"invites": invites.height, "updates": updates.height, "deletions": deletions.height}


def duckdb_join(folder: Path, out: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect()
    for table in ("hris", "members"):
        path = str(folder / f"{table}.csv")
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv('{path}', all_varchar = true)")
        first = con.execute(f"SELECT name FROM pragma_table_info('{table}') LIMIT 1").fetchone()[0]
        con.execute(
            f'ALTER TABLE {table} ADD COLUMN _key VARCHAR; UPDATE {table} SET _key = lower(trim("{first}"))'
        )
    queries = {
        "invites": "SELECT * EXCLUDE (_key) FROM hris ANTI JOIN members USING (_key)",
        "updates": "SELECT * EXCLUDE (_key) FROM hris SEMI JOIN members USING (_key)",
        "deletions": "SELECT * EXCLUDE (_key) FROM members ANTI JOIN hris USING (_key)",
    }
    counts = {}
    for name, query in queries.items():
        con.execute(f"COPY ({query}) TO '{out / f'{name}.csv'}' (HEADER)")
        counts[name] = con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]
    return counts


def pandas_join(folder: Path, out: Path) -> dict[str, int]:
    import pandas as pd

    def read(name: str) -> tuple[pd.DataFrame, pd.Series]:
        frame = pd.read_csv(folder / name, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        return frame, frame.iloc[:, 0].str.strip().str.lower()

    (hris, hris_key), (members, members_key) = read("hris.csv"), read("members.csv")
    in_members, in_hris = hris_key.isin(set(members_key)), members_key.isin(set(hris_key))
    files = {"invites": hris[~in_members], "updates": hris[in_members], "deletions": members[~in_hris]}
    for name, frame in files.items():
        frame.to_csv(out / f"{name}.csv", index=False)
    return {name: len(frame) for name, frame in files.items()}


ANCHORS = {"polars": polars_join, "duckdb": duckdb_join, "pandas": pandas_join}


def main() -> int:
    anchor, folder = sys.argv[1], Path(sys.argv[2])
    out = folder / f"out-{anchor}"
    out.mkdir(exist_ok=True)
    print(json.dumps(ANCHORS[anchor](folder, out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
