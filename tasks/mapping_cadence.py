"""What the `mapping-review` deployment knows of each customer: how often the data mapping table is
reviewed (the cadence agreed on either path), when the table last changed, and the last review.

SFTP customers keep their cadence on their registration (tasks/registry.py). API customers have no
registration, so API step 6 keeps theirs in a Variable of its own (`api_customer_<key>`). The last
review is a third Variable (`mapping_review_<key>`), written only by mapping-review, so it never
overwrites a registration a flow changed meanwhile. Each is plain JSON under 5,000 characters.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from prefect.variables import Variable
from pydantic import BaseModel, Field, ValidationError

from tasks.contracts import API_CUSTOMER_PREFIX, MAPPING_REVIEW_PREFIX
from tasks.customer import Customer
from tasks.registry import (
    MAX_CHARS,
    registration,
    registration_lock,
    registrations,
    variable_for,
    variables_like,
)
from tasks.review_periods import Cadence, Period

logger = logging.getLogger(__name__)


class ApiCustomer(BaseModel):
    """An API customer's data mapping table and its review cadence (API step 6)."""

    customer: Customer
    mapping_link: str = Field(description="The data mapping table engineering's sync was given")
    mapping_cadence: Cadence | None = Field(default=None, description="How often the table is reviewed")
    mapping_updated_at: datetime | None = Field(
        default=None, description="When the customer last sent a table (API step 3, or update-mapping)"
    )


class ReviewState(BaseModel):
    """The last mapping review of a customer: which period, and what came of it."""

    period: str = Field(description="The period reviewed (2026-11, 2026-Q4)")
    until: datetime = Field(description="The end of that period: the next review is the one after")
    outcome: str = Field(description="sent / not asked: … / rejected: …")
    at: datetime


@dataclass(frozen=True)
class CadenceCustomer:
    """A customer with a cadence, from either path."""

    customer: Customer
    path: str  # "SFTP" or "API"
    cadence: str
    mapping_link: str
    mapping_updated_at: datetime | None


def _store(name: str, model: BaseModel) -> None:
    value = json.loads(model.model_dump_json())
    size = len(json.dumps(value))
    if size > MAX_CHARS:
        raise ValueError(f"Variable {name} would be {size} characters; Variables hold {MAX_CHARS}")
    Variable.set(name, value, overwrite=True)


def api_customer(customer_key: str) -> ApiCustomer | None:
    value = Variable.get(variable_for(API_CUSTOMER_PREFIX, customer_key))
    found = ApiCustomer.model_validate(value) if value else None
    return found if found and found.customer.key == customer_key else None


def keep_api_cadence(customer: Customer, mapping_link: str, cadence: str) -> ApiCustomer:
    """API step 6: keep the agreed cadence with the table; the table's date is kept if the link is."""
    with registration_lock(customer.key):
        before = api_customer(customer.key)
        same = before is not None and before.mapping_link == mapping_link
        record = ApiCustomer(
            customer=customer,
            mapping_link=mapping_link,
            mapping_cadence=cadence,  # type: ignore[arg-type]
            mapping_updated_at=before.mapping_updated_at if same and before else datetime.now(UTC),
        )
        _store(variable_for(API_CUSTOMER_PREFIX, customer.key), record)
        return record


def note_api_table(customer_key: str, mapping_link: str) -> bool:
    """update-mapping for an API customer: the table changed now; False if none is kept."""
    with registration_lock(customer_key):
        before = api_customer(customer_key)
        if before is None:
            return False
        now = datetime.now(UTC)
        _store(
            variable_for(API_CUSTOMER_PREFIX, customer_key),
            before.model_copy(update={"mapping_link": mapping_link, "mapping_updated_at": now}),
        )
        return True


def review_state(customer_key: str) -> ReviewState | None:
    value = Variable.get(variable_for(MAPPING_REVIEW_PREFIX, customer_key))
    try:
        return ReviewState.model_validate(value) if value else None
    except ValidationError:
        logger.warning(
            "Variable %s is not a mapping review: ignored", variable_for(MAPPING_REVIEW_PREFIX, customer_key)
        )
        return None


def note_review(customer_key: str, period: Period, outcome: str) -> ReviewState:
    """Record a period's review; one of an older period finishing late never hides a newer one."""
    state = ReviewState(period=period.label, until=period.end, outcome=outcome, at=datetime.now(UTC))
    newer = review_state(customer_key)
    if newer is not None and newer.until > period.end:
        return newer
    _store(variable_for(MAPPING_REVIEW_PREFIX, customer_key), state)
    return state


def valid(model: type[BaseModel], name: str, value: object):
    """The Variable's value as `model`, or None (logged): one bad Variable never hides the others."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        logger.warning("Skipped Variable %s: %s", name, exc.errors()[0]["msg"])
        return None


def api_customers() -> list[ApiCustomer]:
    found = (valid(ApiCustomer, name, value) for name, value in variables_like(API_CUSTOMER_PREFIX).items())
    return [record for record in found if record is not None]


def review_states() -> dict[str, ReviewState]:
    """Every customer's last review, by Variable name (`variable_for(MAPPING_REVIEW_PREFIX, key)`)."""
    found = {
        name: valid(ReviewState, name, value) for name, value in variables_like(MAPPING_REVIEW_PREFIX).items()
    }
    return {name: state for name, state in found.items() if state is not None}


def cadence_customers() -> list[CadenceCustomer]:
    """Every customer with a review cadence: SFTP registrations, then API customers not registered."""
    found = [
        CadenceCustomer(reg.customer, "SFTP", reg.mapping_cadence, reg.mapping_link, reg.mapping_updated_at)
        for reg in registrations()
        if reg.mapping_cadence
    ]
    keys = {c.customer.key for c in found}
    found += [
        CadenceCustomer(api.customer, "API", api.mapping_cadence, api.mapping_link, api.mapping_updated_at)
        for api in api_customers()
        if api.mapping_cadence and api.customer.key not in keys
    ]
    return found


def cadence_customer(customer_key: str) -> CadenceCustomer | None:
    """One customer's cadence (their SFTP registration's, else their API record's); None if none."""
    reg = registration(customer_key)
    if reg is not None and reg.mapping_cadence:
        return CadenceCustomer(
            reg.customer, "SFTP", reg.mapping_cadence, reg.mapping_link, reg.mapping_updated_at
        )
    api = api_customer(customer_key)
    if api is not None and api.mapping_cadence:
        return CadenceCustomer(
            api.customer, "API", api.mapping_cadence, api.mapping_link, api.mapping_updated_at
        )
    return None
