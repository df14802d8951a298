"""Issue 20: every upload right, in order, once; one customer's problem stays that customer's.

Counted at the stand-ins: the SFTP folders, the hub's members and uploads, the Slack messages."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from prefect.exceptions import MissingContextError
from prefect.variables import Variable

from flows.process_upload import process_upload
from flows.sftp_watch import sftp_watch
from flows.update_mapping import use_for_uploads
from tasks.registry import SEEN_PREFIX, Registration, register, registration, registrations, variable_for
from tasks.sftp import claim_name, original_name
from tasks.upload_finish import _resume_onboarding_run
from tasks.upload_queue import resume_next_upload
from tests.conftest import make_customer, wait_until
from tests.gates import FlowInThread, answer, waiting_gate
from tests.test_sftp import UPLOAD, registered

NOV = "Email,First Name,Last Name,Employee Status,Department\nann@acme.example,Ann,Lee,active,Sales\nnov@acme.example,Nov,Joiner,active,Sales\n"
DEC = NOV + "dec@acme.example,Dec,Joiner,active,Sales\n"


def claims(inbox) -> list[str]:
    return sorted(p.name for p in (inbox / "processing").iterdir())


def nov_then_dec() -> tuple[str, str]:
    """November's claim and December's, a second later (two calls can share a microsecond, and the
    names then sort December first)."""
    now = datetime.now(UTC)
    return claim_name("Employees_Nov.csv", now), claim_name("Employees_Dec.csv", now + timedelta(seconds=1))


def refused(inbox) -> list[str]:
    folder = inbox / "refused"
    return sorted(original_name(p.name) for p in folder.iterdir()) if folder.is_dir() else []


def test_uploads_claimed_in_one_tick_keep_their_arrival_order(
    sftp_block, sftp_server, tmp_path, clean_registrations
):
    """Employees_Dec.csv sorts before Employees_Nov.csv by name; November arrived first."""
    _, inbox = registered(tmp_path, sftp_server)
    (inbox / "Employees_Nov.csv").write_text(NOV)
    (inbox / "Employees_Dec.csv").write_text(DEC)
    now = time.time()
    os.utime(inbox / "Employees_Nov.csv", (now - 3600, now - 3600))
    os.utime(inbox / "Employees_Dec.csv", (now - 60, now - 60))
    assert sftp_watch(settle_seconds=0.5, start_processing=False)["claimed"] == 2
    assert [original_name(n) for n in claims(inbox)] == ["Employees_Nov.csv", "Employees_Dec.csv"]


def _start(customer, upload: str) -> FlowInThread:
    return FlowInThread(
        process_upload, f"upload-{uuid.uuid4().hex[:8]}", customer_key=customer.key, upload=upload
    )


def test_a_newer_upload_waits_while_an_older_claim_is_in_processing_even_without_a_run(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack, hub_block, hub
):
    """The older claim's run failed (no live run): the newer one still waits until it is handled."""
    customer, inbox = registered(tmp_path, sftp_server, hub)
    older, newer = nov_then_dec()
    (inbox / "processing").mkdir()
    (inbox / "processing" / older).write_text(NOV)
    (inbox / "processing" / newer).write_text(DEC)

    run = _start(customer, newer)
    assert waiting_gate(run.flow_run_id, timeout=120) == "queued-1"
    assert hub.hub(customer.hub_url).uploads == []

    (inbox / "refused").mkdir()
    (inbox / "processing" / older).rename(inbox / "refused" / older)  # a person handled the older one
    assert resume_next_upload(customer.key, claims(inbox)) == newer
    answer(run.flow_run_id, "apply-files", decision="approve", approver="Casey")
    assert run.result().is_completed()
    assert set(hub.hub(customer.hub_url).members) == {
        "ann@acme.example",
        "nov@acme.example",
        "dec@acme.example",
    }


def test_an_older_upload_after_a_newer_one_was_applied_is_refused_as_superseded(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack, hub_block, hub
):
    customer, inbox = registered(tmp_path, sftp_server, hub)
    older, newer = nov_then_dec()
    (inbox / "processing").mkdir()
    (inbox / "processing" / newer).write_text(DEC)
    run = _start(customer, newer)
    answer(run.flow_run_id, "apply-files", decision="approve", approver="Casey")
    assert run.result().is_completed()
    uploads = len(hub.hub(customer.hub_url).uploads)

    (inbox / "processing" / older).write_text(NOV)  # November comes back (put back by hand)
    late = _start(customer, older)
    wait_until(lambda: refused(inbox) == ["Employees_Nov.csv"], timeout=120, what="November to be refused")
    assert late.result().is_completed() and late.result().result()["superseded_by"] == newer
    assert len(hub.hub(customer.hub_url).uploads) == uploads  # nothing applied over December
    assert "dec@acme.example" in hub.hub(customer.hub_url).members
    [alert] = [m["text"] for m in slack.messages("monitoring-hris-files") if "Employees_Nov.csv" in m["text"]]
    assert "older than Employees_Dec.csv" in alert and "never applied over newer data" in alert
    assert claims(inbox) == []


def test_the_same_bytes_after_a_rejected_mass_deletion_are_a_new_decision(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack, hub_block, hub
):
    members = "Email,First Name,Last Name,Status\n" + "".join(
        f"m{i}@acme.example,M,{i},active\n" for i in range(40)
    )
    customer, inbox = registered(tmp_path, sftp_server, hub, members=members)
    content = "Email,First Name\nm0@acme.example,M\n"  # 39 of 40 members leave
    (inbox / "processing").mkdir()
    first = claim_name("staff.csv")
    (inbox / "processing" / first).write_text(content)
    run = _start(customer, first)
    answer(run.flow_run_id, "mass-deletion", decision="reject", reason="ask the customer", approver="Casey")
    assert run.result().is_cancelled()

    again = claim_name("staff.csv")  # the customer confirms and sends the same bytes again
    (inbox / "processing" / again).write_text(content)
    run = _start(customer, again)
    answer(run.flow_run_id, "mass-deletion", decision="approve", approver="Casey")
    answer(run.flow_run_id, "apply-files", decision="approve", approver="Casey")
    assert run.result().is_completed()
    assert set(hub.hub(customer.hub_url).members) == {"m0@acme.example"}
    assert not [m for m in slack.messages("monitoring-hris-files") if "same content" in m["text"]]

    third = claim_name("staff.csv")  # once applied, the same bytes again are a duplicate
    (inbox / "processing" / third).write_text(content)
    assert process_upload(customer.key, third)["duplicate_of"] == again


def test_a_name_too_long_once_stamped_is_refused_and_the_tick_goes_on(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack
):
    _, long_inbox = registered(tmp_path, sftp_server)
    long_name = "x" * 246 + ".csv"  # 250 bytes: a plain name, too long for `<stamp>-<name>`
    (long_inbox / long_name).write_text(UPLOAD)
    (long_inbox / "staff.csv").write_text(UPLOAD)
    _, other = registered(tmp_path, sftp_server)
    (other / "staff.csv").write_text(UPLOAD)

    result = sftp_watch(settle_seconds=0.5, start_processing=False)
    assert (result["claimed"], result["refused"], result["errors"]) == (2, 1, 0)
    assert [original_name(n) for n in claims(long_inbox)] == ["staff.csv"]
    assert [original_name(n) for n in claims(other)] == ["staff.csv"]
    assert len(list((long_inbox / "refused").iterdir())) == 1
    [alert] = [m["text"] for m in slack.messages("monitoring-hris-files") if "Refused" in m["text"]]
    assert "longer than" in alert


def test_an_invalid_registry_variable_is_skipped_and_alerted_once(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack
):
    customer, inbox = registered(tmp_path, sftp_server)
    (inbox / "staff.csv").write_text(UPLOAD)
    Variable.set("sftp_watch_broken_example", {"mode": "production"}, overwrite=True)
    Variable.set(variable_for(SEEN_PREFIX, customer.key), {"overdue_alerts": "many"}, overwrite=True)
    try:
        first = sftp_watch(settle_seconds=0.5, start_processing=False)
        second = sftp_watch(settle_seconds=0.5, start_processing=False)
        assert (first["claimed"], first["invalid_variables"], second["invalid_variables"]) == (1, 1, 1)
        assert [r.customer.key for r in registrations()] == [customer.key]
        alerts = [
            m["text"] for m in slack.messages("monitoring-hris-files") if "skips a Variable" in m["text"]
        ]
        assert len(alerts) == 1 and "sftp_watch_broken_example" in alerts[0] and "customer" in alerts[0]
    finally:
        Variable.unset("sftp_watch_broken_example")


def test_a_marked_upload_needs_no_settling_and_a_cut_off_upload_is_refused(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack, hub_block, hub
):
    customer, inbox = registered(tmp_path, sftp_server, hub)
    (inbox / "staff.csv").write_text(UPLOAD)
    (inbox / "staff.csv.done").write_text("")
    started = time.monotonic()
    assert sftp_watch(settle_seconds=3600, start_processing=False)["claimed"] == 1  # no hour's wait
    assert time.monotonic() - started < 600  # however busy the machine, far from the settle time
    assert not (inbox / "staff.csv.done").exists() and refused(inbox) == []

    [claimed] = claims(inbox)
    (inbox / "processing" / claimed).unlink()
    cut = claim_name("cut.csv")
    (inbox / "processing" / cut).write_text(UPLOAD + "cut@acme.example,Cu")  # the transfer stopped mid-row
    state = process_upload(customer.key, cut, return_state=True)
    assert state.is_failed() and "the last line" in state.message and "cut off" in state.message
    assert refused(inbox) == ["cut.csv"] and hub.hub(customer.hub_url).uploads == []


def _decide_first_upload(start: threading.Barrier, reg: Registration) -> None:
    """process-upload's step after the first production upload is decided."""
    start.wait()
    _resume_onboarding_run(reg, "x.csv", None, "applied")


def _point_at(start: threading.Barrier, customer, link: str) -> None:
    """update-mapping's step, outside a run (its closing log line needs one)."""
    start.wait()
    try:
        use_for_uploads.fn(customer, link)
    except MissingContextError:
        pass


def test_process_upload_and_update_mapping_change_the_registration_at_once_without_losing_either(
    prefect_api, clean_registrations, tmp_path
):
    from prefect import flow

    @flow
    def onboarding():
        return "done"

    waiting = onboarding(return_state=True).state_details.flow_run_id
    customer = make_customer()
    for round_ in range(8):
        register(
            Registration(
                customer=customer, mode="onboarding", mapping_link="old", waiting_run_id=str(waiting)
            )
        )
        link = f"https://docs.google.com/spreadsheets/d/new{round_}/edit"
        reg = registration(customer.key)
        start = threading.Barrier(2)
        threads = [
            threading.Thread(target=_decide_first_upload, args=(start, reg)),
            threading.Thread(target=_point_at, args=(start, customer, link)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        now = registration(customer.key)
        assert (now.mode, now.waiting_run_id, now.mapping_link) == ("production", None, link), round_
