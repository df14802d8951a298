"""When a customer's data mapping table is due for review: the runbook's "updated unique values for
all the fields on a monthly or quarterly basis", as calendar periods (Prefect-free).

A period's review falls due when the period ends; it is asked once (the `mapping-review` deployment),
and not at all when the customer sent a new table (`update-mapping`) in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Cadence = Literal["monthly", "quarterly"]
MONTHS = {"monthly": 1, "quarterly": 3}
OVERDUE_AFTER = timedelta(days=7)  # a review not sent (or decided) a week after it fell due is overdue


@dataclass(frozen=True)
class Period:
    """One review period: `label` names it in once-keys and emails (2026-11, 2026-Q4)."""

    label: str
    start: datetime
    end: datetime  # the next period's start: the review falls due then


def period_of(cadence: str, when: datetime) -> Period:
    """The calendar month or quarter (UTC) holding `when`."""
    months = MONTHS[cadence]
    when = when.astimezone(UTC)
    first = (when.month - 1) // months * months + 1
    start = datetime(when.year, first, 1, tzinfo=UTC)
    year, month = divmod(first - 1 + months, 12)
    end = datetime(when.year + year, month + 1, 1, tzinfo=UTC)
    label = f"{when.year}-{first:02d}" if months == 1 else f"{when.year}-Q{(first - 1) // 3 + 1}"
    return Period(label, start, end)


def last_ended(cadence: str, now: datetime) -> Period:
    """The latest period that has ended: the one whose review is due now."""
    return period_of(cadence, period_of(cadence, now).start - timedelta(microseconds=1))


def sent_new_table(period: Period, mapping_updated_at: datetime | None) -> bool:
    """The customer sent a new table in the period (or since it ended): nothing to ask for it."""
    return mapping_updated_at is not None and mapping_updated_at >= period.start


def next_review(
    cadence: str, reviewed_until: datetime | None, mapping_updated_at: datetime | None, now: datetime
) -> tuple[datetime, bool]:
    """When the next review falls due, and whether it is overdue: the last ended period's while it
    has not been done (`reviewed_until`: the end of the last period reviewed) and the customer sent
    no new table since it began; else the current period's."""
    due = last_ended(cadence, now)
    done = reviewed_until is not None and reviewed_until >= due.end
    if done or sent_new_table(due, mapping_updated_at):
        return period_of(cadence, now).end, False
    return due.end, now - due.end > OVERDUE_AFTER


def parse_period(label: str) -> Period:
    """The period a label names (2026-11: a month, 2026-Q4: a quarter); ValueError if none."""
    year, _, part = label.partition("-")
    if part.startswith("Q") and part[1:] in ("1", "2", "3", "4") and year.isdigit():
        return period_of("quarterly", datetime(int(year), 3 * int(part[1:]) - 2, 1, tzinfo=UTC))
    if year.isdigit() and part.isdigit() and 1 <= int(part) <= 12 and len(part) == 2:
        return period_of("monthly", datetime(int(year), int(part), 1, tzinfo=UTC))
    raise ValueError(f"period {label!r}: expected a month (2026-11) or a quarter (2026-Q4)")
