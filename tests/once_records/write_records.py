"""Write one once-record per once-only step, as the code of this checkout stores them.

`python -m tests.once_records.write_records FOLDER` writes each record where a once-task stores
it for the once-key `once--records.example--<step>` (Prefect's result storage layout), and
`expected.json`, the JSON form of every value. The folders beside this file were written this way
by older code (`pickle-3218f86` by this script at 3218f86, when Prefect pickled the records); the
compatibility test reads them all with today's code. After changing a record class, write a new
folder (`json-v1-<commit>`) and keep the old ones.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path


def record_values() -> dict:
    """The value each once-step returns, one realistic example each (no member names or emails)."""
    from tasks.mapping import Finding, MappedField, MappedValue, MappingTable, ValidationReport
    from tasks.records import (
        MappingCheck,
        Received,
        SampleFiles,
        SegmentsOutcome,
        SentEmail,
        SetupLinkIssued,
        SharedFiles,
        ShownFiles,
        SupportRequest,
    )

    summary = {
        "invites": 6,
        "updates": 2,
        "deletions": 1,
        "deactivations": 1,
        "reactivations": 0,
        "rejected_rows": 1,
        "unmapped_values": [{"field": "Department", "value": "Legal", "rows": 3}],
        "deletion_guard": {
            "tripped": False,
            "allowed": False,
            "max_deletion_pct": 20,
            "deletions": 1,
            "members": 12,
            "deletion_pct": 8.33,
        },
        "hris_rows": 10,
        "members": 12,
        "missing_columns": [],
        "status_column": True,
        "notes": [],
    }
    table = MappingTable(
        source="https://docs.google.com/spreadsheets/d/1AbC/edit",
        fields=[
            MappedField(
                hris_field="Department",
                segment="Department",
                visibility="Visible",
                category="Work",
                row=2,
                values=[MappedValue("Eng", "Engineering", 2, "Visible"), MappedValue("Ops", "Operations", 3)],
            )
        ],
        orphan_values=[MappedValue("Misc", "Other", 9)],
    )
    report = ValidationReport(table.source, [Finding("warning", "Row 9: a value without a field")])
    return {
        "send-email": SentEmail(
            message_id="<once--records.example--implementation-email.0a1b2c3d@hris-runbook>",
            to=["it-admin@records.example"],
            cc=["csm@10kc.example"],
            subject="Your HRIS integration: implementation steps",
            sent_at=datetime(2026, 11, 30, 14, 5, 9, tzinfo=UTC),
        ),
        "post-support-request": SupportRequest(
            channel="C0PRODSUPPORT",
            ts="1764511509.000100",
            permalink="https://slack.example/archives/C0PRODSUPPORT/p1764511509000100",
            attachment_file_id="F0SAMPLE",
        ),
        "make-setup-link": SetupLinkIssued(
            base_url="https://links.example", organization_id="org_01", expires_at=1767225600
        ),
        "read-mapping-table": MappingCheck(table=table, report=report),
        "apply-segments": SegmentsOutcome(mode="api", segments_created=2, options_added=5),
        "start-flow": "6f1c2d3e-4b5a-4c6d-8e7f-8091a2b3c4d5",
        "record-decision": "### Send the email\n\n| who | when | decision |\n|---|---|---|\n| Ana | 2026-11-30 14:05 UTC | approve |\n",
        "files-from-sample": SampleFiles(
            out_dir="/srv/hris/files/records.example/sample-staff", summary=summary
        ),
        "fetch-sample": "/srv/hris/files/records.example/sample-staff.csv",
        "register-for-watching": "onboarding",
        "start-production-watch": datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        "share-files": SharedFiles(
            channel="C0MONITORING",
            files=["potential invites.csv", "profile updates.csv", "profile deletions.csv"],
            message_ts="1764580000.000200",
        ),
        "receive-upload": Received(sha256="9f" * 32, size=48213),
        "first-claim-of-content": "20261201T090000Z-employees.csv",
        "generate-upload-files": summary | {"columns": ["Email", "First Name", "Department"]},
        "apply-files-to-hub": {"invited": 6, "updated": 2, "removed": 1},
        "invite-members": 6,
        "update-members": 2,
        "remove-members": 1,
        "report-duplicate": "1764580100.000300",
        "record-upload-decision": "applied through the hub API: 6 invited, 2 updated, 1 removed",
        "alert-once": True,
        "bind-shown-files": ShownFiles(
            sha256={
                "potential invites.csv": "1a" * 32,
                "profile updates.csv": "2b" * 32,
                "profile deletions.csv": "3c" * 32,
                "for-hub-api/potential invites.csv": "4d" * 32,
                "for-hub-api/profile updates.csv": "5e" * 32,
                "for-hub-api/profile deletions.csv": "6f" * 32,
            }
        ),
    }


def to_json(value):
    """A value's plain JSON form, to compare what a record reads back as."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def main(folder: str) -> None:
    from prefect.filesystems import LocalFileSystem
    from prefect.results import ResultStore

    from tasks.once import OnceRecordSerializer, record_key

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    store = ResultStore(
        result_storage=LocalFileSystem(basepath=str(target)), serializer=OnceRecordSerializer()
    )
    values = record_values()
    for step, value in values.items():
        store.write(key=record_key(f"once--records.example--{step}"), obj=value)
    expected = {step: to_json(value) for step, value in values.items()}
    (target / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
