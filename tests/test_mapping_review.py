"""Issue 23 §1: the data mapping table stays alive. The cadence agreed on either path is kept with
the customer; `mapping-review` asks for updated values once per customer and period (for SFTP
customers, listing what their uploads carried that the table does not map), after the CSM approves;
never when the customer sent a new table in the period; the board shows the next review."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tasks.registry import Registration
from tasks.review_periods import last_ended, next_review, parse_period, period_of
from tasks.upload_history import read_upload, unmapped_since, upload_table
from tests.conftest import make_customer, wait_until

DEC_6 = datetime(2026, 12, 6, 9, tzinfo=UTC)
LONG_AGO = datetime(2026, 1, 15, tzinfo=UTC)
CSM = {"approver": "Casey Success"}


def test_periods_are_calendar_months_and_quarters_due_when_they_end():
    assert period_of("monthly", DEC_6).label == "2026-12"
    assert last_ended("monthly", DEC_6) == parse_period("2026-11")
    assert last_ended("quarterly", DEC_6).label == "2026-Q3"
    assert last_ended("quarterly", datetime(2027, 1, 1, tzinfo=UTC)) == parse_period("2026-Q4")
    assert parse_period("2026-Q4").end == datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="period '2026-13': expected a month"):
        parse_period("2026-13")


def test_the_next_review_is_the_ended_periods_until_it_is_done_and_overdue_a_week_after():
    nov_end = datetime(2026, 12, 1, tzinfo=UTC)
    assert next_review("monthly", None, LONG_AGO, DEC_6 - timedelta(days=1)) == (nov_end, False)  # day 4
    assert next_review("monthly", None, LONG_AGO, DEC_6 + timedelta(days=3)) == (nov_end, True)  # day 8
    done = parse_period("2026-11").end
    assert next_review("monthly", done, LONG_AGO, DEC_6 + timedelta(days=3)) == (
        datetime(2027, 1, 1, tzinfo=UTC),
        False,
    )
    # a new table in November: November is not asked, the next review is December's
    sent = datetime(2026, 11, 20, tzinfo=UTC)
    assert next_review("monthly", None, sent, DEC_6 + timedelta(days=3)) == (
        datetime(2027, 1, 1, tzinfo=UTC),
        False,
    )


def _artifact(table: list[dict], at: datetime) -> dict:
    return {"data": json.dumps(table), "created": at.isoformat()}


def test_upload_tables_keep_the_unmapped_values_and_older_tables_still_read():
    summary = {
        "invites": 1, "updates": 2, "deletions": 0, "deactivations": 0, "reactivations": 0,
        "rejected_rows": 0, "rows": 9, "columns": ["Email", "Department"],
        "unmapped_values": [
            {"field": "Department", "value": "Sales Ops", "rows": 4},
            {"field": "Location", "value": "Lyon", "rows": 1},
        ],
    }  # fmt: skip
    week1 = read_upload(
        _artifact(upload_table("w1.csv", "c1", "#m", summary), datetime(2026, 11, 2, tzinfo=UTC))
    )
    summary["unmapped_values"] = [{"field": "Department", "value": "Sales Ops", "rows": 6}]
    week2 = read_upload(
        _artifact(upload_table("w2.csv", "c2", "#m", summary), datetime(2026, 11, 9, tzinfo=UTC))
    )
    assert week1 and week2 and week1.unmapped == (("Department", "Sales Ops", 4), ("Location", "Lyon", 1))
    older = upload_table("w0.csv", "c0", "#m", summary)
    del older[0]["unmapped"]  # written before 2026-12
    week0 = read_upload(_artifact(older, datetime(2026, 10, 20, tzinfo=UTC)))
    assert week0 is not None and week0.unmapped == () and week0.unmapped_values == 1

    seen = unmapped_since([week2, week1, week0], parse_period("2026-11").start)
    assert [(s.field, s.value, s.people, f"{s.first_seen:%m-%d}") for s in seen] == [
        ("Department", "Sales Ops", 6, "11-02"),  # people: as the newest upload counted them
        ("Location", "Lyon", 1, "11-02"),
    ]


def test_a_registration_stored_before_the_cadence_still_reads():
    stored = {
        "customer": make_customer().model_dump(mode="json"),
        "mode": "production",
        "mapping_link": "https://docs.google.com/spreadsheets/d/x",
        "upload_frequency": "weekly",
        "registered_at": "2026-10-01T00:00:00Z",
        "sftp_block": "default",
        "waiting_run_id": None,
        "watching": True,
        "mapping_updated_at": "2026-10-01T00:00:00Z",
    }
    reg = Registration.model_validate(stored)
    assert reg.mapping_cadence is None and reg.upload_frequency == "weekly"


# --- with a Prefect server ----------------------------------------------------------------------------


@pytest.fixture
def no_cadences(prefect_api, clean_registrations):
    """No API customer records or review states from other tests (the sweep reads every one)."""
    from prefect.variables import Variable

    from tasks.contracts import API_CUSTOMER_PREFIX, MAPPING_REVIEW_PREFIX
    from tasks.mapping_cadence import variables_like

    def clear():
        for prefix in (API_CUSTOMER_PREFIX, MAPPING_REVIEW_PREFIX):
            for name in variables_like(prefix):
                Variable.unset(name)

    clear()
    yield
    clear()


def _register(customer, cadence: str | None, updated: datetime) -> None:
    from tasks.registry import register

    register(
        Registration(
            customer=customer,
            mode="production",
            mapping_link="https://docs.google.com/spreadsheets/d/1ReviewTable/edit",
            registered_at=LONG_AGO,  # no upload frequency: no upload overdue flag
            mapping_cadence=cadence,
            mapping_updated_at=updated,
        )
    )


def _review_runs(customer_key: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="mapping-review"))
        )
    return [r for r in runs if r.parameters.get("customer_key") == customer_key]


@pytest.mark.timeout(600)  # the served flows may start inside this test; every wait is on an event
def test_the_review_is_asked_once_per_period_with_the_unmapped_values_and_not_after_a_new_table(
    served, smtp_block, smtp_server, slack_block, no_cadences
):
    from flows.mapping_review import NOT_ASKED, mapping_review
    from tasks.mapping_cadence import review_state
    from tests.gates import FlowInThread, answer, form_description, waiting_gate
    from tests.test_sftp_production import seed_upload_tables

    due, fresh = make_customer(company_name="Acme Corp"), make_customer(company_name="Fresh Foods")
    _register(due, "monthly", LONG_AGO)
    _register(fresh, "monthly", datetime.now(UTC))  # a new table in this period (and in the last)
    _register(make_customer(), None, LONG_AGO)  # registered before cadences: never asked
    counts = {"invites": 0, "updates": 1, "deletions": 0, "deactivations": 0, "reactivations": 0,
              "rejected_rows": 0, "rows": 40}  # fmt: skip
    unmapped = [
        {"field": "Department", "value": "Sales Ops", "rows": 4},
        {"field": "Work Location", "value": "Lyon", "rows": 1},
    ]
    seed_upload_tables(
        due.key,
        [upload_table("week-1.csv", "c1", "#m", counts | {"unmapped_values": unmapped})[0]],
    )
    period = last_ended("monthly", datetime.now(UTC))

    sweep = FlowInThread(mapping_review, f"sweep-{uuid.uuid4().hex[:8]}")
    assert sweep.result().is_completed()
    assert review_state(fresh.key).outcome == NOT_ASKED and review_state(due.key) is None
    [run] = wait_until(lambda: _review_runs(due.key), timeout=60, what="the review run")
    assert run.name == f"Acme Corp · mapping-review {period.label}"
    assert waiting_gate(run.id, timeout=180) == "mapping-review-email"
    form = form_description(run.id)
    assert "- Department: “Sales Ops” (4 people, first seen " in form
    assert "- Work Location: “Lyon” (1 person, first seen " in form
    assert "on a monthly basis" in form and "@" not in form.split("---", 1)[1].split("Best regards")[0]
    answer(run.id, "mapping-review-email", decision="approve", **CSM)
    wait_until(lambda: review_state(due.key), timeout=120, what="the review to be recorded")
    [email] = smtp_server.handler.messages()
    assert email["To"] == due.contact_email and period.label in email["Subject"]

    # the next day's sweep, and a re-run of the same review, send nothing more
    again = FlowInThread(mapping_review, f"sweep-{uuid.uuid4().hex[:8]}")
    assert again.result().is_completed()
    rerun = FlowInThread(
        mapping_review, f"rerun-{uuid.uuid4().hex[:8]}", customer_key=due.key, period=period.label
    )
    assert rerun.result().is_completed()
    assert len(smtp_server.handler.messages()) == 1
    assert len(_review_runs(due.key)) == 1 and _review_runs(fresh.key) == []
    assert review_state(due.key).outcome == "sent"


def test_a_hand_started_review_with_a_bad_customer_or_period_fails_in_one_line(no_cadences):
    from flows.mapping_review import mapping_review

    customer = make_customer(company_name="Typo Inc")
    _register(customer, "monthly", LONG_AGO)
    unknown = mapping_review("nobody.example", "2026-11", return_state=True)
    assert unknown.is_failed()
    assert unknown.message == "customer nobody.example: no mapping review cadence is kept for them"
    bad = mapping_review(customer.key, "November", return_state=True)
    assert bad.is_failed()
    assert bad.message == "period 'November': expected a month (2026-11) or a quarter (2026-Q4)"


def test_an_older_period_s_review_finishing_late_keeps_the_newer_one(no_cadences):
    from tasks.mapping_cadence import note_review, review_state

    customer = make_customer(company_name="Late Ltd")
    note_review(customer.key, parse_period("2026-11"), "sent")
    note_review(customer.key, parse_period("2026-10"), "sent")  # a run left waiting a month, answered now
    assert review_state(customer.key).period == "2026-11"  # the board would flag November overdue otherwise


def test_the_api_cadence_is_kept_and_the_board_shows_the_next_review_and_flags_an_overdue_one(no_cadences):
    from tasks.mapping_cadence import api_customer, keep_api_cadence, note_review
    from tasks.status_board import build_board
    from webapp.board import render_page

    sftp, api = make_customer(company_name="Late Ltd"), make_customer(company_name="Api Inc")
    _register(sftp, "monthly", LONG_AGO)
    keep_api_cadence(api, "https://docs.google.com/spreadsheets/d/api", "quarterly")
    kept = api_customer(api.key)
    assert kept and kept.mapping_cadence == "quarterly" and kept.mapping_updated_at

    now = DEC_6 + timedelta(days=3)  # November's review fell due 8 days ago
    rows = {row.customer_key: row for row in build_board(now)}
    late, on_time = rows[sftp.key], rows[api.key]
    assert late.next_mapping_review == datetime(2026, 12, 1, tzinfo=UTC)
    assert "mapping review overdue" in late.flags and late.needs_a_person
    assert on_time.path == "API" and on_time.next_mapping_review == datetime(2027, 1, 1, tzinfo=UTC)
    assert "mapping review overdue" not in on_time.flags
    page = render_page(list(rows.values()), [], None, now=now)
    assert "review overdue since 2026-12-01" in page and "next review 2027-01-01" in page

    note_review(sftp.key, parse_period("2026-11"), "sent")
    row = next(r for r in build_board(now) if r.customer_key == sftp.key)
    assert row.next_mapping_review == datetime(2027, 1, 1, tzinfo=UTC) and not row.flags
