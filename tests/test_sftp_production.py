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
from flows.upload_queue import upload_runs
from tasks.registry import Registration, Seen, note_seen, register, registration
from tasks.slack import Slack
from tests.conftest import make_customer, wait_until
from tests.gates import answer, read_run, wait_for_gate, waiting_gate
from tests.test_sftp_integration import monitoring_shares, upload_run

MAPPING = "Category,HRIS Field,HRIS Values,Notes,10KC Segment,10KC Value,Visibility\nOrg,Department,Sales,,,,Public\n"
UPLOAD = "Email,First Name,Last Name,Employee Status,Department\nann@acme.example,Ann,Lee,active,Sales\nnew@acme.example,New,Hire,active,Sales\n"


def production_customer(tmp_path, **overrides) -> Registration:
    customer = make_customer(**overrides)
    (tmp_path / "map.csv").write_text(MAPPING)
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
        release.wait(60)
        return export(request)

    hub._routes.insert(0, ("GET", re.compile(r"^/(?P<hub>[^/]+)/api/admin/v1/members/export$"), held_export))
    (inbox / "staff.csv").write_text(UPLOAD)
    assert sftp_watch(settle_seconds=0.5)["claimed"] == 1
    first = upload_run(customer.key, "staff.csv", 1)
    claimed_on = next((inbox / "processing").iterdir()).name[:8]
    day = f"{claimed_on[:4]}-{claimed_on[4:6]}-{claimed_on[6:]}"
    assert read_run(first).name == f"Acme Corp · staff.csv ({day})"  # company and file, not the key
    wait_until(inside.is_set, timeout=300, what="process-upload to ask the hub for its members")
    pid = wait_until(lambda: flow_run_pid(first), timeout=30, what="the flow run's process")
    os.kill(pid, signal.SIGKILL)
    hub._routes.pop(0)
    release.set()
    wait_until(
        lambda: read_run(first).state.is_final(), timeout=60, what="the killed run to be marked crashed"
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
