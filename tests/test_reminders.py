"""The approval-reminders sweeper reaches the people of every suspended run, however many wait."""

from __future__ import annotations

import time

from prefect.client.orchestration import get_client
from prefect.states import Paused

from tasks.contracts import APPLY_FILES, PROCESS_UPLOAD
from tests.conftest import set_wait_settings, wait_until
from tests.test_sftp_production import production_customer


def suspended_upload_runs(customer_key: str, count: int) -> list:
    """process-upload deployment runs suspended at the apply gate, as the worker leaves them."""
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(PROCESS_UPLOAD)
        deployment = client.create_deployment(flow_id=flow_id, name="reminders-test")
        runs = []
        for n in range(count):
            parameters = {"customer_key": customer_key, "upload": f"20261201T09000{n}Z-staff.csv"}
            run = client.create_flow_run_from_deployment(deployment, parameters=parameters)
            client.set_flow_run_state(run.id, Paused(pause_key=APPLY_FILES, reschedule=True), force=True)
            runs.append(run.id)
        return runs


def test_process_upload_gates_are_reminded_in_slack_past_the_first_page(
    prefect_api, slack_block, slack, clean_registrations, tmp_path
):
    """Issue 20: process-upload runs carry `customer_key`, not the `customer` the sweeper looked
    for, so their reminders never reached Slack; and only the first page of paused runs was read."""
    from flows.reminders import approval_reminders

    reg = production_customer(tmp_path)
    runs = suspended_upload_runs(reg.customer.key, 3)
    set_wait_settings(poll_seconds=0.2, remind_after_hours=1 / 3600)
    try:
        started = time.monotonic()
        wait_until(lambda: time.monotonic() - started > 1.5, what="one reminder interval")
        assert approval_reminders(page_size=2) >= 3
    finally:
        set_wait_settings(poll_seconds=0.2, remind_after_hours=1)

    dm = slack.messages("dm-" + slack.users[reg.customer.csm.email].lower())  # the CSM decides
    reminded = {
        str(run) for run in runs for m in dm if "Still waiting" in m["text"] and str(run) in m["text"]
    }
    assert reminded == {str(run) for run in runs}
