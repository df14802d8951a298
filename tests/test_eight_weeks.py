"""Issue 20's scenario: one customer, eight weeks of uploads, through sftp-watch and process-upload.

Against the real SFTP server (OpenSSH sshd) and the hub stand-in: an apostrophe email, two files in
one tick whose names sort the wrong way, a file cut off mid-row, a rejected mass deletion sent again,
an older upload failing while a newer one waits, a renamed column, a leaver. After every week the
hub's members are exactly the people of the customer's latest applied file: 0 lost, 0 applied out of
order, 0 applied twice.
"""

from __future__ import annotations

import os
import time
import uuid

from flows.process_upload import process_upload
from flows.sftp_watch import sftp_watch
from tasks.sftp import original_name
from tests.gates import FlowInThread, answer, form_description, waiting_gate
from tests.test_sftp import registered

OBRIEN = ("o'brien@acme.example", "Pat", "O'Brien", "Sales")
STAFF = [(f"p{i}@acme.example", f"P{i}", "Staff", "Sales") for i in range(14)]
APPROVE = {"decision": "approve", "approver": "Casey"}


def upload(people, department_column: str = "Department") -> str:
    rows = "".join(f"{email},{first},{last},active,{dept}\n" for email, first, last, dept in people)
    return f"Email,First Name,Last Name,Employee Status,{department_column}\n" + rows


def emails(people) -> set[str]:
    return {p[0] for p in people}


def deliver(inbox, name: str, text: str, minutes_ago: float = 5) -> None:
    """The customer's upload, finished `minutes_ago` (its SFTP mtime: the arrival order)."""
    (inbox / name).write_text(text)
    when = time.time() - minutes_ago * 60
    os.utime(inbox / name, (when, when))


def tick() -> dict:
    return sftp_watch(settle_seconds=0.5, start_processing=False)


def claimed(inbox) -> list[str]:
    """The claims in processing/, in the order they arrived."""
    return sorted(p.name for p in (inbox / "processing").iterdir())


def start(customer, claim: str) -> FlowInThread:
    return FlowInThread(
        process_upload, f"week-{uuid.uuid4().hex[:8]}", customer_key=customer.key, upload=claim
    )


def decided(folder) -> list[str]:
    return sorted(original_name(p.name) for p in folder.iterdir()) if folder.is_dir() else []


def test_eight_weeks_of_one_customer_leave_the_hub_as_the_latest_applied_file_says(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack, hub_block, hub
):
    members = "Email,First Name,Last Name,Status,Department\n" + "".join(
        f"{e},{f},{last},active,{d}\n" for e, f, last, d in STAFF
    )
    customer, inbox = registered(tmp_path, sftp_server, hub, members=members)

    def hub_members() -> set[str]:
        return set(hub.hub(customer.hub_url).members)

    # Week 1: an apostrophe email joins; nobody is deleted for an unusual address.
    week1 = [OBRIEN, *STAFF]
    deliver(inbox, "staff.csv", upload(week1))
    assert tick()["claimed"] == 1
    run = start(customer, claimed(inbox)[0])
    answer(run.flow_run_id, "apply-files", **APPROVE)
    assert run.result().is_completed()
    assert hub_members() == emails(week1)

    # Week 2: two files in one tick; the older one's name sorts later. The newer waits for it.
    older = [*week1, ("nov@acme.example", "Nov", "Joiner", "Sales")]
    newer = [p for p in older if p[0] != "p13@acme.example"] + [
        ("dec@acme.example", "Dec", "Joiner", "Sales")
    ]
    deliver(inbox, "staff-nov.csv", upload(older), minutes_ago=60)
    deliver(inbox, "staff-dec.csv", upload(newer), minutes_ago=5)  # "dec" < "nov" by name
    assert tick()["claimed"] == 2
    first, second = claimed(inbox)
    assert [original_name(first), original_name(second)] == ["staff-nov.csv", "staff-dec.csv"]
    late = start(customer, second)
    assert waiting_gate(late.flow_run_id) == "queued-1"
    early = start(customer, first)
    answer(early.flow_run_id, "apply-files", **APPROVE)
    assert early.result().is_completed()
    assert hub_members() == emails(older)
    answer(late.flow_run_id, "apply-files", **APPROVE)  # let go by the older run as it finished
    assert late.result().is_completed()
    assert hub_members() == emails(newer)

    # Week 3: a transfer stopped mid-row is refused; nobody after the cut is deleted.
    deliver(inbox, "staff.csv", upload(newer) + "late@acme.example,La")
    assert tick()["claimed"] == 1
    assert start(customer, claimed(inbox)[0]).result().is_failed()
    assert hub_members() == emails(newer)

    # Week 4: most people gone: the mass-deletion guard asks, the CSM says no.
    shrunk = [OBRIEN, *STAFF[:2]]
    deliver(inbox, "staff.csv", upload(shrunk))
    assert tick()["claimed"] == 1
    run = start(customer, claimed(inbox)[0])
    answer(run.flow_run_id, "mass-deletion", decision="reject", reason="ask the customer", approver="Casey")
    assert run.result().is_cancelled()
    assert hub_members() == emails(newer)

    # Week 5: the customer confirms and sends the same bytes again: a new decision, not a duplicate.
    deliver(inbox, "staff.csv", upload(shrunk))
    assert tick()["claimed"] == 1
    run = start(customer, claimed(inbox)[0])
    answer(run.flow_run_id, "mass-deletion", **APPROVE)
    answer(run.flow_run_id, "apply-files", **APPROVE)
    assert run.result().is_completed()
    assert hub_members() == emails(shrunk)

    # Week 6: an older upload fails (unreadable) while a newer one waits behind it.
    week6 = [*shrunk, ("june@acme.example", "June", "Joiner", "Sales")]
    deliver(inbox, "broken.csv", "Name;Dept\nx;y\n", minutes_ago=60)
    deliver(inbox, "staff.csv", upload(week6), minutes_ago=5)
    assert tick()["claimed"] == 2
    broken, good = claimed(inbox)
    waiting = start(customer, good)
    assert waiting_gate(waiting.flow_run_id) == "queued-1"
    assert hub_members() == emails(shrunk)
    assert start(customer, broken).result().is_failed()
    answer(waiting.flow_run_id, "apply-files", **APPROVE)
    assert waiting.result().is_completed()
    assert hub_members() == emails(week6)

    # Week 7: `Department` comes as `Dept`: said at the gate, and nobody is lost for it.
    week7 = [*week6, ("july@acme.example", "July", "Joiner", "Sales")]
    deliver(inbox, "staff.csv", upload(week7, department_column="Dept"))
    assert tick()["claimed"] == 1
    run = start(customer, claimed(inbox)[0])
    assert "Check:" in form_description(run.flow_run_id) and "Department" in form_description(run.flow_run_id)
    answer(run.flow_run_id, "apply-files", **APPROVE)
    assert run.result().is_completed()
    assert hub_members() == emails(week7)

    # Week 8: a leaver.
    week8 = [p for p in week7 if p[0] != "june@acme.example"]
    deliver(inbox, "staff.csv", upload(week8))
    assert tick()["claimed"] == 1
    run = start(customer, claimed(inbox)[0])
    answer(run.flow_run_id, "apply-files", **APPROVE)
    assert run.result().is_completed()
    assert hub_members() == emails(week8)
    assert OBRIEN[0] in hub_members()

    # Every upload was decided once: seven applied and archived, three refused, none left behind.
    assert decided(inbox / "archive") == sorted(["staff.csv"] * 5 + ["staff-nov.csv", "staff-dec.csv"])
    assert decided(inbox / "refused") == ["broken.csv", "staff.csv", "staff.csv"]
    assert claimed(inbox) == []
