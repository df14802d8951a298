"""What the Runs page, a run's timeline and its log show for an upload: the company, the file, counts in words."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, datetime

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.process_upload import process_upload
from tasks.sftp import claim_name
from tests.gates import (
    answer,
    artifacts_and_logs,
    assert_words_only,
    find_run_by_name,
    read_run,
    wait_for_gate,
)
from tests.test_sftp_production import UPLOAD, production_customer

CLAIMED_AT = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
HASH = re.compile(r"[0-9a-f]{12,}")


def task_run_names(flow_run_id) -> list[str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return [r.name for r in runs]


def start_upload_run(customer_key: str, upload: str) -> threading.Thread:
    """process-upload in a thread with its own run name (as a worker runs it); it pauses in-process."""
    thread = threading.Thread(
        target=process_upload, kwargs={"customer_key": customer_key, "upload": upload, "return_state": True}
    )
    thread.daemon = True
    thread.start()
    return thread


def test_an_upload_run_and_its_task_runs_are_named_after_the_company_and_the_file(
    sftp_block, sftp_server, slack_block, slack, hub_block, hub, clean_registrations, tmp_path
):
    company = f"Acme Corp {uuid.uuid4().hex[:4].upper()}"
    reg = production_customer(tmp_path, company_name=company)
    hub.hub(reg.customer.hub_url).members["ann@acme.example"] = {
        "Email": "ann@acme.example",
        "Status": "active",
    }
    processing = sftp_server.root / reg.customer.key / "processing"
    processing.mkdir(parents=True)
    claimed = claim_name("employees.csv", CLAIMED_AT)
    (processing / claimed).write_text(UPLOAD)

    thread = start_upload_run(reg.customer.key, claimed)
    run_id = find_run_by_name(f"{company} · employees.csv (2026-12-05)")
    wait_for_gate(run_id, "apply-files", timeout=240)
    answer(run_id, "apply-files", decision="approve", approver="Casey Success")
    thread.join(180)
    assert read_run(run_id).state.is_completed()

    names = task_run_names(run_id)
    once_steps = [n for n in names if n.split(" · ")[0] in ONCE_STEPS]
    assert {n.split(" · ")[0] for n in once_steps} == ONCE_STEPS
    for name in once_steps:
        assert name.startswith(f"{name.split(' · ')[0]} · {company} · employees.csv (2026-12-05)"), name
    assert not [n for n in names if HASH.search(n) or "once--" in n]
    assert f"generate-files · {company} · employees.csv (2026-12-05)" in names
    assert f"record-decision · {company} · employees.csv (2026-12-05) · apply-files" in names

    _, logs = artifacts_and_logs(run_id)
    assert (
        "Generated files: 2 HRIS rows compared with 1 hub member: 1 potential invite, 1 profile update "
        "(0 deactivations, 0 reactivations), 0 profile deletions, 0 rejected rows, 0 unmapped values"
    ) in logs
    assert_words_only(logs)


ONCE_STEPS = {
    "receive-upload",
    "first-claim-of-content",
    "generate-upload-files",
    "share-files",
    "invite-members",
    "update-members",
    "remove-members",
    "record-decision",
    "record-upload-decision",
}


def test_an_upload_of_an_unregistered_customer_is_named_by_its_key(prefect_api, clean_registrations):
    key = f"wk{uuid.uuid4().hex[:6]}.com"
    state = process_upload(
        customer_key=key, upload=claim_name("employees.csv", CLAIMED_AT), return_state=True
    )
    assert state.is_failed() and "is not registered" in state.message
    assert read_run(state.state_details.flow_run_id).name == f"{key} · employees.csv (2026-12-05)"


def test_a_step_already_done_adds_no_task_run_when_the_flow_runs_through_it_again(prefect_api):
    """A resumed run re-executes from the top: its timeline must show each runbook step once."""
    from prefect import flow

    from tasks.once import once_key, once_task

    done = []

    @once_task("count-me")
    def count_me(once_key: str) -> int:
        done.append(once_key)
        return len(done)

    @flow(name="re-executed")
    def re_executed(key: str) -> list[int]:
        return [count_me(key), count_me(key), count_me.with_options(retries=1)(key)]  # as after 2 resumes

    key = once_key(f"timeline-{uuid.uuid4().hex[:8]}", "count-me")
    state = re_executed(key, return_state=True)
    assert state.result() == [1, 1, 1] and len(done) == 1
    assert len(task_run_names(state.state_details.flow_run_id)) == 1
