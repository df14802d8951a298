"""Production uploads over time: a claim stranded by a killed worker, and uploads that never come."""

from __future__ import annotations

import os
import re
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.sftp_watch import overdue_alerts, sftp_watch
from tasks.registry import Registration, Seen, note_seen, register, registration
from tasks.slack import Slack
from tasks.upload_queue import upload_runs
from tests.conftest import make_customer, wait_until
from tests.gates import answer, read_run, wait_for_gate, waiting_gate
from tests.test_sftp_integration import monitoring_shares, upload_run

MAPPING = "Category,HRIS Field,HRIS Values,Notes,10KC Segment,10KC Value,Visibility\nOrg,Department,Sales,,,,Public\n"
UPLOAD = "Email,First Name,Last Name,Employee Status,Department\nann@acme.example,Ann,Lee,active,Sales\nnew@acme.example,New,Hire,active,Sales\n"


def production_customer(tmp_path, mapping: str = MAPPING, **overrides) -> Registration:
    customer = make_customer(**overrides)
    (tmp_path / "map.csv").write_text(mapping)
    reg = Registration(
        customer=customer,
        mode="production",
        mapping_link=str(tmp_path / "map.csv"),
        upload_frequency="weekly",
        registered_at=datetime(2026, 1, 5, 9, tzinfo=UTC),
    )
    register(reg)
    return reg


def flow_run_pid(flow_run_id) -> int | None:
    """The process running a flow run: the runner starts it with PREFECT__FLOW_RUN_ID set."""
    wanted = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if wanted in (entry / "environ").read_bytes().split(b"\0"):
                    return int(entry.name)
            except OSError:
                continue
    return None


@pytest.mark.timeout(600)
def test_a_claim_stranded_by_a_killed_worker_is_completed_once_by_the_next_tick(
    served, sftp_block, sftp_server, slack_block, slack, hub_block, hub, clean_registrations, tmp_path
):
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc to find the flow run's process")
    reg = production_customer(tmp_path)
    customer = reg.customer
    hub.hub(customer.hub_url).members["ann@acme.example"] = {"Email": "ann@acme.example", "Status": "active"}
    inbox = sftp_server.root / customer.key
    inbox.mkdir()

    # The hub's member export holds the first run inside process-upload until the test kills it.
    inside, release = threading.Event(), threading.Event()
    export = next(h for m, p, h in hub._routes if m == "GET" and "export" in p.pattern)

    def held_export(request):
        inside.set()
        release.wait(300)  # set once the test has killed the run's process
        return export(request)

    hub._routes.insert(0, ("GET", re.compile(r"^/(?P<hub>[^/]+)/api/admin/v1/members/export$"), held_export))
    (inbox / "staff.csv").write_text(UPLOAD)
    assert sftp_watch(settle_seconds=0.5)["claimed"] == 1
    first = upload_run(customer.key, "staff.csv", 1)
    claimed_on = next((inbox / "processing").iterdir()).name[:8]
    day = f"{claimed_on[:4]}-{claimed_on[4:6]}-{claimed_on[6:]}"
    assert read_run(first).name == f"Acme Corp · staff.csv ({day})"  # company and file, not the key
    wait_until(inside.is_set, timeout=300, what="process-upload to ask the hub for its members")
    pid = wait_until(lambda: flow_run_pid(first), timeout=60, what="the flow run's process")
    os.kill(pid, signal.SIGKILL)
    hub._routes.pop(0)
    release.set()
    wait_until(
        lambda: read_run(first).state.is_final(), timeout=120, what="the killed run to be marked crashed"
    )
    assert [p.name.endswith("staff.csv") for p in (inbox / "processing").iterdir()] == [True]  # stranded

    # The next tick starts it again; it completes exactly once.
    tick = sftp_watch(settle_seconds=0.5)
    assert (tick["claimed"], tick["picked_up"]) == (0, 1)
    second = upload_run(customer.key, "staff.csv", 2)
    wait_for_gate(second, "apply-files", timeout=300)
    answer(second, "apply-files", decision="approve", approver="Casey")
    wait_until(lambda: read_run(second).state.is_completed(), timeout=300, what="the second run to end")
    assert len(monitoring_shares(slack)) == 1
    assert [action for action, _ in hub.hub(customer.hub_url).uploads] == ["invite", "update", "remove"]
    assert list((inbox / "processing").iterdir()) == [] and len(list((inbox / "archive").iterdir())) == 1
    assert sftp_watch(settle_seconds=0.5)["picked_up"] == 0  # nothing left behind


def test_a_missed_weekly_upload_is_alerted_once_per_missed_week(
    slack_block, slack, clean_registrations, tmp_path
):
    reg = production_customer(tmp_path)
    start = reg.registered_at
    slack_client = Slack(slack_block)

    def tick_through(days: float, since: datetime) -> None:
        now = since
        while now <= since + timedelta(days=days):
            overdue_alerts([registration(reg.customer.key)], slack_client, "#monitoring-hris-files", now)
            now += timedelta(hours=6)

    tick_through(22.9, start)  # overdue after 8 days, then 15 and 22: three missed weeks
    alerts = [m["text"] for m in slack.messages("monitoring-hris-files") if "no HRIS upload" in m["text"]]
    assert len(alerts) == 3 and all("Acme Corp" in a and "weekly" in a for a in alerts)
    dm = slack.messages("dm-" + slack.users["casey@10kc.example"].lower())
    assert len([m for m in dm if "no HRIS upload" in m["text"]]) == 3

    uploaded = start + timedelta(days=23)  # an upload arrives: the clock starts again
    note_seen(reg.customer.key, Seen(last_upload_at=uploaded))
    tick_through(7.9, uploaded)
    assert len([m for m in slack.messages("monitoring-hris-files") if "no HRIS upload" in m["text"]]) == 3
    tick_through(0.5, uploaded + timedelta(days=8))
    assert len([m for m in slack.messages("monitoring-hris-files") if "no HRIS upload" in m["text"]]) == 4


def test_without_a_hub_api_the_csm_hands_over_a_fresh_member_export_through_the_upload_page(
    prefect_api, sftp_block, sftp_server, slack_block, slack, clean_registrations, tmp_path
):
    import html
    import uuid

    import httpx

    from blocks import WebApp
    from flows.process_upload import process_upload
    from tasks.sftp import claim_name
    from tests.conftest import ServerThread, delete_block
    from tests.gates import FlowInThread, form_description
    from webapp.app import create_app
    from webapp.member_exports import routes

    secret = "upload-page-test-secret-0123456789abcdef"
    server = ServerThread(create_app(routes(secret)))
    WebApp(url=server.url, signing_secret=secret).save("default", overwrite=True)
    try:
        reg = production_customer(tmp_path)
        processing = sftp_server.root / reg.customer.key / "processing"
        processing.mkdir(parents=True)
        claimed = claim_name("staff.csv")
        (processing / claimed).write_text(UPLOAD)
        run = FlowInThread(
            process_upload,
            f"upload-{uuid.uuid4().hex[:8]}",
            customer_key=reg.customer.key,
            upload=claimed,
        )
        wait_for_gate(run.flow_run_id, "member-export")
        link = re.search(r"(http://127\.0\.0\.1:\d+/\S+)", form_description(run.flow_run_id)).group(1)
        page = httpx.get(link, trust_env=False, timeout=30)
        assert page.status_code == 200 and "Members > Export" in html.unescape(page.text)

        export = "Email,First Name,Last Name,Status\nann@acme.example,Ann,Lee,active\nleft@acme.example,Left,Us,active\n"
        sent = httpx.post(
            link,
            data={"uploaded_by": "Casey Success"},
            files={"export": ("members.csv", export.encode(), "text/csv")},
            trust_env=False,
            timeout=30,
        )
        assert sent.status_code == 200, sent.text
        wait_for_gate(run.flow_run_id, "apply-files")
        checklist = form_description(run.flow_run_id)
        assert "Invite Members > Bulk Invites > Upload member profile data" in checklist
        answer(run.flow_run_id, "apply-files", decision="approve", approver="Casey Success")
        result = run.result().result()
        # compared with the export handed over just now: new@ invited, ann@ gets her department, left@ removed
        assert (result["invites"], result["updates"], result["deletions"]) == (1, 1, 1)
        assert result["outcome"] == "applied by hand in the hub (checklist)"
        assert len(monitoring_shares(slack)) == 1
        again = httpx.post(
            link,
            data={"uploaded_by": "Casey Success"},
            files={"export": ("members.csv", export.encode(), "text/csv")},
            trust_env=False,
            timeout=30,
        )
        assert again.status_code == 410  # single use
    finally:
        delete_block(WebApp, "default")
        server.stop()


def test_a_renamed_mapped_column_is_said_in_the_summary_the_gate_and_one_alert(
    prefect_api, sftp_block, sftp_server, slack_block, slack, hub_block, hub, clean_registrations, tmp_path
):
    """Issue 20: `Department` became `Dept`: updates of that segment stopped for good, silently."""
    import uuid

    from flows.process_upload import process_upload
    from tasks.sftp import claim_name
    from tests.gates import FlowInThread, form_description

    reg = production_customer(tmp_path)
    (tmp_path / "map.csv").write_text(MAPPING + ",,Ops,,,,\n,,Eng,,,,\n")
    processing = sftp_server.root / reg.customer.key / "processing"
    processing.mkdir(parents=True)
    line = (
        "`Dept` looks like `Department` (3 of 4 values match): ask the customer or update the mapping table"
    )
    for week, extra in enumerate(["", "late@acme.example,Late,Joiner,active,Ops\n"], start=1):
        claimed = claim_name(f"staff-{week}.csv")
        (processing / claimed).write_text(
            "Email,First Name,Last Name,Employee Status,Dept\nann@acme.example,Ann,Lee,active,Sales\n"
            "bo@acme.example,Bo,Chen,active,Ops\ncy@acme.example,Cy,Young,active,Eng\n"
            "di@acme.example,Di,Ross,active,Legal\n" + extra
        )
        run = FlowInThread(
            process_upload, f"upload-{uuid.uuid4().hex[:8]}", customer_key=reg.customer.key, upload=claimed
        )
        wait_for_gate(run.flow_run_id, "apply-files")
        assert f"**Check:** {line}" in form_description(run.flow_run_id)
        answer(run.flow_run_id, "apply-files", decision="approve", approver="Casey")
        assert run.result().is_completed()

    summaries = monitoring_shares(slack)
    assert len(summaries) == 2 and all(line in s["text"] for s in summaries)
    alerts = [m for m in slack.messages("monitoring-hris-files") if "a mapped column is missing" in m["text"]]
    assert len(alerts) == 1 and line in alerts[0]["text"]  # once per customer and column


def test_without_a_hub_api_a_re_dispatched_upload_does_not_ask_again_for_an_export_it_would_ignore(
    prefect_api, sftp_block, sftp_server, slack_block, slack, clean_registrations, tmp_path
):
    """Issue 20: the files are made once per upload (from the first export); a re-dispatched run
    asked the CSM for a fresh member export anyway, then ignored it."""
    import uuid

    import httpx

    from blocks import WebApp
    from flows.process_upload import process_upload
    from tasks.sftp import claim_name
    from tests.conftest import ServerThread, delete_block
    from tests.gates import FlowInThread, form_description
    from webapp.app import create_app
    from webapp.member_exports import routes

    secret = "upload-page-test-secret-0123456789abcdef"
    server = ServerThread(create_app(routes(secret)))
    WebApp(url=server.url, signing_secret=secret).save("default", overwrite=True)
    try:
        reg = production_customer(tmp_path)
        processing = sftp_server.root / reg.customer.key / "processing"
        processing.mkdir(parents=True)
        claimed = claim_name("staff.csv")
        (processing / claimed).write_text(UPLOAD)

        def dispatch():
            name = f"upload-{uuid.uuid4().hex[:8]}"
            return FlowInThread(process_upload, name, customer_key=reg.customer.key, upload=claimed)

        first = dispatch()
        wait_for_gate(first.flow_run_id, "member-export")
        link = re.search(r"(http://127\.0\.0\.1:\d+/\S+)", form_description(first.flow_run_id)).group(1)
        export = "Email,First Name,Last Name,Status\nann@acme.example,Ann,Lee,active\n"
        sent = httpx.post(
            link,
            data={"uploaded_by": "Casey Success"},
            files={"export": ("members.csv", export.encode(), "text/csv")},
            trust_env=False,
            timeout=30,
        )
        assert sent.status_code == 200, sent.text
        wait_for_gate(first.flow_run_id, "apply-files")

        again = dispatch()  # as the watcher does for a claim whose run it took for dead
        assert waiting_gate(again.flow_run_id, timeout=120) == "apply-files"  # no second export asked
        answer(again.flow_run_id, "apply-files", decision="approve", approver="Casey Success")
        result = again.result().result()
        assert (result["invites"], result["updates"]) == (1, 1)  # from the files made the first time
        answer(first.flow_run_id, "apply-files", decision="approve", approver="Casey Success")
        assert first.result().is_completed()
        assert len(monitoring_shares(slack)) == 1
    finally:
        delete_block(WebApp, "default")
        server.stop()


def seed_upload_tables(customer_key: str, tables: list[dict]) -> None:
    """`upload-<key>` tables as process-upload publishes them, oldest first (version 1 has no decision)."""
    import json

    from prefect.client.orchestration import get_client

    from tasks.contracts import upload_artifact

    with get_client(sync_client=True) as client:
        for table in tables:
            body = {"key": upload_artifact(customer_key), "type": "table", "data": json.dumps([table])}
            client.request("POST", "/artifacts/", json=body).raise_for_status()


def history_table(n: int, deletions: int, decision: str | None, rows: int = 100) -> dict:
    counts = {"invites": 1, "updates": 2, "deletions": deletions, "deactivations": 1, "reactivations": 0}
    table = {"upload": f"week-{n}.csv", "claimed as": f"2026110{n}T090000.000000Z-week-{n}.csv",
             "channel": "#monitoring", "rows": rows, **counts, "rejected_rows": 0, "missing columns": 0,
             "unmapped values": 0}  # fmt: skip
    if decision is None:
        return table  # version 1: written before decisions were kept
    columns = ["Email", "First Name", "Last Name", "Employee Status", "Department", "Location"]
    return table | {"columns": columns, "decision": decision, "decided by": "Casey" if decision != "pending" else "",
                    "table version": 2}  # fmt: skip


def test_the_destructive_gates_show_the_customers_history_and_its_guard_trips_on_it(
    prefect_api, sftp_block, sftp_server, slack_block, slack, hub_block, hub, clean_registrations, tmp_path
):
    """Issue 23: 12 of 100 members deleted passes the flat rule (20%), but this customer's applied
    uploads delete a median of 1: the guard stops it, says why, and both gates list the history."""
    import uuid

    from flows.process_upload import process_upload
    from tasks.sftp import claim_name
    from tasks.upload_history import customer_uploads
    from tests.gates import FlowInThread, form_description
    from tests.test_approval_notices import notices

    reg = production_customer(tmp_path)
    for i in range(100):
        email = f"m{i}@acme.example"
        hub.hub(reg.customer.hub_url).members[email] = {"Email": email, "First Name": "M", "Last Name": str(i), "Status": "active"}  # fmt: skip
    seed_upload_tables(
        reg.customer.key,
        [
            history_table(1, 25, None),  # older code's table: listed, never counted as applied
            history_table(2, 0, "pending"),  # week 2's step-8 table, then its decision
            history_table(2, 0, "applied"),
            history_table(3, 30, "rejected"),
            history_table(4, 1, "applied"),
            history_table(5, 2, "applied"),
            history_table(6, 9, "pending"),  # a claim never decided: not history
        ],
    )
    processing = sftp_server.root / reg.customer.key / "processing"
    processing.mkdir(parents=True)
    claimed = claim_name("staff.csv")  # 88 of the 100 members, and no Location column
    (processing / claimed).write_text(
        "Email,First Name,Last Name,Employee Status,Department\n"
        + "".join(f"m{i}@acme.example,M,{i},active,Sales\n" for i in range(88))
    )
    run = FlowInThread(process_upload, f"upload-{uuid.uuid4().hex[:8]}", customer_key=reg.customer.key, upload=claimed)  # fmt: skip

    wait_for_gate(run.flow_run_id, "mass-deletion")
    form = form_description(run.flow_run_id)
    assert (
        "**This customer's history:** the upload `staff.csv` would delete 12 members, above max(10, 5 × 1) = 10"
        in form
    )
    assert "Flat rule" not in form  # 12% of the members: under the flat rule's 20%
    checks = [
        "**Check:** 12 deletions where this customer's last 3 applied upload(s) deleted a median of 1",
        "**Check:** 88 rows, 12% fewer than the 100 of `week-5.csv`, the last applied upload",
        "**Check:** the column `Location` was in `week-5.csv`, the last applied upload, and is not in this one",
    ]
    assert all(check in form for check in checks)
    history = [line for line in form.splitlines() if line.startswith("| 20")]
    assert [line.split(" | ")[1:] for line in history] == [
        ["`week-5.csv`", "100", "1", "2", "1", "2", "applied", "Casey |"],
        ["`week-4.csv`", "100", "1", "2", "1", "1", "applied", "Casey |"],
        ["`week-3.csv`", "100", "1", "2", "1", "30", "rejected", "Casey |"],
        ["`week-2.csv`", "100", "1", "2", "1", "0", "applied", "Casey |"],
        ["`week-1.csv`", "100", "1", "2", "1", "25", "not recorded", "— |"],
    ]
    [notice] = wait_until(lambda: notices(slack), what="the mass-deletion notice")
    lines = notice.splitlines()
    assert "• deletion guard: 12 of 100 members (12.0%), limit 20%" in lines  # the flat rule: not over
    assert (
        ":warning: *History rule:* 12 deletions, above max(10, 5 × 1) = 10 (the median of this customer's last 3 applied upload(s) is 1)"
        in lines
    )
    assert (
        ":warning: *Check:* the column `Location` was in `week-5.csv`, the last applied upload, and is not in this one"
        in lines
    )
    assert lines[-6:] == [
        "*Last 5 decided upload(s), newest first:*",
        *[f"• {day}: 100 rows, 1 invites, 2 updates (1 deactivations), {d} deletions: {decision}"
          for day, d, decision in [(history[0][2:12], 2, "applied by Casey"), (history[1][2:12], 1, "applied by Casey"),
                                   (history[2][2:12], 30, "rejected by Casey"), (history[3][2:12], 0, "applied by Casey"),
                                   (history[4][2:12], 25, "not recorded")]],
    ]  # fmt: skip

    answer(run.flow_run_id, "mass-deletion", decision="approve", approver="Casey")
    wait_for_gate(run.flow_run_id, "apply-files")
    form = form_description(run.flow_run_id)
    assert (
        all(check in form for check in checks)
        and len([x for x in form.splitlines() if x.startswith("| 20")]) == 5
    )
    apply = wait_until(lambda: notices(slack)[1:], what="the apply notice")[0]
    assert apply.splitlines()[-6] == "*Last 5 decided upload(s), newest first:*"
    answer(run.flow_run_id, "apply-files", decision="approve", approver="Dana")
    assert run.result().is_completed()
    assert len(hub.hub(reg.customer.hub_url).members) == 88
    latest = customer_uploads(reg.customer.key)[0]  # the next upload's history starts with this one
    assert (latest.name, latest.rows, latest.deletions, latest.decision, latest.decided_by) == (
        "staff.csv",
        88,
        12,
        "applied",
        "Dana",
    )


def test_an_approval_binds_the_files_it_showed_and_a_changed_file_is_not_applied(
    prefect_api, sftp_block, sftp_server, slack_block, slack, hub_block, hub, clean_registrations, tmp_path
):
    """Issue 23: a file edited on the worker after the gate showed it is refused with one line and a
    new gate; the hub is left as it was, and the decision artifact keeps the hashes it approved."""
    import hashlib
    import uuid

    from flows.process_upload import process_upload
    from tasks.files_dir import files_dir
    from tasks.sftp import claim_name
    from tests.gates import FlowInThread, artifacts_and_logs, form_description
    from tests.test_approval_notices import notices

    reg = production_customer(tmp_path)
    members = hub.hub(reg.customer.hub_url).members
    members["ann@acme.example"] = {"Email": "ann@acme.example", "Status": "active"}
    before = {email: dict(values) for email, values in members.items()}
    processing = sftp_server.root / reg.customer.key / "processing"
    processing.mkdir(parents=True)
    claimed = claim_name("staff.csv")
    (processing / claimed).write_text(UPLOAD)
    run = FlowInThread(process_upload, f"upload-{uuid.uuid4().hex[:8]}", customer_key=reg.customer.key, upload=claimed)  # fmt: skip
    wait_for_gate(run.flow_run_id, "apply-files")
    invites = files_dir() / reg.customer.key / Path(claimed).stem / "for-hub-api" / "potential invites.csv"
    shown = hashlib.sha256(invites.read_bytes()).hexdigest()
    assert "Approving binds these files (SHA-256): `potential invites.csv`" in form_description(
        run.flow_run_id
    )
    with invites.open("a") as handle:  # edited on the worker after the CSM looked
        handle.write("mallory@acme.example,Mal,Lory,\n")

    answer(run.flow_run_id, "apply-files", decision="approve", approver="Casey")
    wait_for_gate(run.flow_run_id, "apply-files-2")
    line = (
        "Not applied: for-hub-api/potential invites.csv changed on the worker after Casey approved them "
        "(regenerated or edited): check the files and approve again"
    )
    assert form_description(run.flow_run_id).startswith(
        f"## Apply Acme Corp's files through the hub API?\n\n**{line}.**"
    )
    assert members == before and hub.hub(reg.customer.hub_url).uploads == []  # nothing applied
    again = wait_until(lambda: notices(slack)[1:], what="the second apply notice")[0]
    assert again.splitlines()[1] == f":no_entry: *{line.replace('Not applied:', 'Not applied:*')}."
    artifacts, _ = artifacts_and_logs(run.flow_run_id)
    [decision] = [a for a in artifacts if a["key"].startswith("decision-")]
    assert f"| for-hub-api/potential invites.csv | {shown} |" in decision["data"]

    answer(run.flow_run_id, "apply-files-2", decision="reject", reason="who edited it?", approver="Casey")
    assert run.result().is_cancelled()
    assert members == before and hub.hub(reg.customer.hub_url).uploads == []


def test_each_upload_counts_once_and_only_applied_uploads_make_the_guard_s_median():
    """Step 8 and the decision each publish a table: the newest says what the upload is. Tables of
    older code (no decision) read, but a customer without an applied upload has only the flat rule."""
    import json

    from tasks.upload_history import decided_before, history_rule, newest_per_claim, read_upload

    def artifact(minute: int, n: int, deletions: int, decision: str | None) -> dict:
        table = history_table(n, deletions, decision)
        return {"created": f"2026-12-0{n}T09:{minute:02d}:00+00:00", "data": json.dumps([table])}

    tables = [artifact(1, 1, 40, None), artifact(1, 2, 50, "pending"), artifact(2, 2, 50, "rejected")]
    uploads = newest_per_claim([read_upload(a) for a in reversed(tables)])
    assert [(u.name, u.decision) for u in uploads] == [("week-2.csv", "rejected"), ("week-1.csv", None)]
    history = decided_before(uploads, claimed="this-one.csv")
    assert len(history) == 2 and history_rule(12, history) is None  # nothing applied: flat rule only
    applied = read_upload(artifact(3, 3, 4, "applied"))
    rule = history_rule(21, [applied, *history])
    assert (rule.median, rule.limit, rule.tripped) == (4, 20, True)
    assert not history_rule(20, [applied]).tripped
    assert (
        read_upload({"created": "2026-12-01T09:00:00+00:00", "data": json.dumps([{"table version": 3}])})
        is None
    )


def process_upload_deployment():
    """The process-upload deployment on the session's server (served by `served` when that runs)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from flows.process_upload import process_upload
    from tasks.contracts import PROCESS_UPLOAD, deployment_name

    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(deployment_name(PROCESS_UPLOAD)).id
        except ObjectNotFound:
            return process_upload.to_deployment(name=PROCESS_UPLOAD).apply()


def test_a_silent_running_try_is_taken_for_dead_and_the_third_try_alerts_once(
    sftp_block, sftp_server, slack_block, slack, clean_registrations, tmp_path
):
    """Issue 19: two tries crashed, the third is Running without a sign of life. Within
    `stale_after_minutes` it is left alone; past it, it is marked Crashed, nothing is started a fourth
    time, and #monitoring-hris-files gets one "still in processing/ after 3 tries" alert, however
    many ticks follow."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed, Running

    from tasks.sftp import claim_name

    reg = production_customer(tmp_path)
    processing = sftp_server.root / reg.customer.key / "processing"
    processing.mkdir(parents=True)
    claimed = claim_name("staff.csv")
    (processing / claimed).write_text(UPLOAD)
    deployment = process_upload_deployment()
    parameters = {"customer_key": reg.customer.key, "upload": claimed}
    with get_client(sync_client=True) as client:  # never Scheduled: no runner ever takes them
        for _ in range(2):
            client.create_flow_run_from_deployment(deployment, parameters=parameters, state=Crashed())
        third = client.create_flow_run_from_deployment(deployment, parameters=parameters, state=Running())

    def stranded_alerts():
        return [m["text"] for m in slack.messages("monitoring-hris-files") if "after 3 tries" in m["text"]]

    tick = sftp_watch(settle_seconds=0.5, stale_after_minutes=60)  # silent, but not for an hour yet
    assert (tick["picked_up"], tick["stranded"], tick["errors"]) == (0, 0, 0)
    assert read_run(third.id).state.is_running() and stranded_alerts() == []

    quiet = timedelta(seconds=1)
    wait_until(
        lambda: datetime.now(UTC) - read_run(third.id).state.timestamp > 2 * quiet,
        what="the third try to be quiet for longer than stale_after_minutes",
    )
    for _ in range(2):
        tick = sftp_watch(settle_seconds=0.5, stale_after_minutes=quiet.total_seconds() / 60)
        assert (tick["picked_up"], tick["stranded"], tick["errors"]) == (0, 1, 0)
    assert read_run(third.id).state.is_crashed()
    [alert] = stranded_alerts()
    assert "`staff.csv` is still in processing/ after 3 tries" in alert and str(third.id) in alert
    assert len(upload_runs(reg.customer.key, live_only=False)) == 3  # no fourth try
    assert [p.name for p in processing.iterdir()] == [claimed]  # left for a person
