"""Customers registered for SFTP watching (SFTP step 7): one Prefect Variable each, `sftp_watch_<key>`.

A Variable holds at most 5,000 JSON characters, so a registration keeps only what the watcher and
process-upload need; member data never goes in.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Literal

from prefect.client.orchestration import get_client
from prefect.variables import Variable
from pydantic import BaseModel, Field, ValidationError

from tasks.customer import Customer, key_in_alphabet
from tasks.once import lock_manager

logger = logging.getLogger(__name__)

PREFIX = "sftp_watch_"
MAX_CHARS = 5000
UPLOAD_PERIODS = {"weekly": timedelta(days=7), "monthly": timedelta(days=31)}
GRACE = timedelta(days=1)  # an upload is overdue one day after its period ends


def variable_for(prefix: str, customer_key: str) -> str:
    """Variable names allow lowercase letters, digits and underscores; one name per customer key."""
    return prefix + key_in_alphabet(customer_key, "_")


class Registration(BaseModel):
    customer: Customer
    mode: Literal["onboarding", "production"] = Field(
        description="onboarding: files go to the account channel; production: to the monitoring channel"
    )
    mapping_link: str = Field(
        description="The data mapping table (Google Sheets link, or a file path on the worker)"
    )
    upload_frequency: Literal["weekly", "monthly"] | None = Field(
        default=None,
        description="How often the customer uploads (SFTP step 1); None: lateness not watched",
    )
    registered_at: datetime | None = Field(
        default=None, description="When production watching started: the clock for the first expected upload"
    )
    sftp_block: str = Field(default="default", description="Name of the SFTP Server block holding this inbox")
    waiting_run_id: str | None = Field(
        default=None, description="An sftp-integration run waiting for this upload"
    )
    watching: bool = Field(default=True, description="Whether sftp-watch polls this inbox (from SFTP step 7)")
    mapping_updated_at: datetime | None = Field(
        default=None,
        description="When `mapping_link` was last set (stamped by `register`) or update-mapping last ran; "
        "None: registered before this",
    )
    mapping_cadence: Literal["monthly", "quarterly"] | None = Field(
        default=None,
        description="How often the customer sends updated values for the table (mapping-review); "
        "None: registered before this, or not agreed",
    )
    deletion_grace_days: int = Field(
        default=0,
        ge=0,
        le=365,
        description="Days a member missing from uploads is kept deactivated before deletion (issue 23 §6); "
        "0: deleted at the first upload without them, as the runbook says. Registrations stored before "
        "this field read as 0",
    )

    @property
    def variable_name(self) -> str:
        return variable_for(PREFIX, self.customer.key)


def missed_periods(since: datetime, frequency: str | None, now: datetime) -> int:
    """Upload periods missed since `since` (the last upload, or the start of watching), after GRACE;
    what sftp-watch alerts once each and the status board flags."""
    period = UPLOAD_PERIODS.get(frequency or "")
    if period is None:
        return 0
    return max(0, (now - since - GRACE) // period)


def register(registration: Registration) -> None:
    """Store the registration. `mapping_updated_at` is stamped when the mapping link is new or changed,
    else kept from the stored registration (callers build registrations without it)."""
    stored = Variable.get(registration.variable_name)
    stored = stored if isinstance(stored, dict) else {}
    stamp = registration.mapping_updated_at
    if stored and stored.get("mapping_link") != registration.mapping_link:
        stamp = datetime.now(UTC)
    elif stamp is None and not stored:
        stamp = datetime.now(UTC)
    elif stamp is None and isinstance(stored.get("mapping_updated_at"), str):
        try:
            stamp = datetime.fromisoformat(stored["mapping_updated_at"])
        except ValueError:  # edited by hand: left unknown
            stamp = None
    registration = registration.model_copy(update={"mapping_updated_at": stamp})
    value = json.loads(registration.model_dump_json())
    size = len(json.dumps(value))
    if size > MAX_CHARS:
        raise ValueError(
            f"registration for {registration.customer.key} is {size} characters; Variables hold {MAX_CHARS}"
        )
    Variable.set(registration.variable_name, value, overwrite=True)


class InvalidVariable(ValueError):
    """A registry Variable whose value is not what the watcher wrote: skipped, never fatal for the rest."""


def _problem(name: str, exc: ValidationError) -> str:
    """One line naming the Variable and its first problem (the value itself may hold people's data)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "value"
    return f"Variable {name}: {where}: {first['msg']} (fix or delete it in Prefect > Variables)"


@contextmanager
def registration_lock(customer_key: str) -> Iterator[None]:
    """One writer of a customer's registration at a time (flows, `hris-runbook customer`)."""
    locks, holder = lock_manager(), uuid.uuid4().hex
    lock = f"registration-{variable_for(PREFIX, customer_key)}"
    if not locks.acquire_lock(lock, holder, acquire_timeout=120, hold_timeout=60):
        raise TimeoutError(f"the SFTP registration of {customer_key} stayed locked for 120 s; try again")
    try:
        yield
    finally:
        locks.release_lock(lock, holder)


def update_registration(customer_key: str, **changes) -> Registration | None:
    """Change some fields of the registration as it is now, one writer at a time (a lock per customer),
    so two flows changing different fields at once both keep their change; None if not registered."""
    with registration_lock(customer_key):
        current = registration(customer_key)
        if current is None:
            return None
        updated = current.model_copy(update=changes)
        register(updated)
        return updated


def remove_registration(customer_key: str) -> Registration | None:
    """Stop watching a customer (offboarding): their registration and what the watcher remembered of
    them go, under the registration's lock; None if not registered. The SFTP inbox is left as it is."""
    with registration_lock(customer_key):
        current = registration(customer_key)
        if current is not None:
            unregister(customer_key)
        return current


def registration(customer_key: str) -> Registration | None:
    value = Variable.get(variable_for(PREFIX, customer_key))
    found = Registration.model_validate(value) if value else None
    return found if found and found.customer.key == customer_key else None  # not an older key format's


def registrations() -> list[Registration]:
    """Every registered customer, 200 per API call; an invalid Variable is skipped (and logged)."""
    found, problems = read_registrations()
    for problem in problems:
        logger.warning("Skipped: %s", problem)
    return found


def variables_like(prefix: str) -> dict[str, object]:
    """Every Variable whose name starts with `prefix` (values by name, in name order), 200 per request:
    the one paged read of the customers' Variables (registrations, sftp-watch's, mapping reviews)."""
    found: dict[str, object] = {}
    offset = 0
    with get_client(sync_client=True) as client:
        while True:
            page = client.request(
                "POST",
                "/variables/filter",
                json={
                    "variables": {"name": {"like_": prefix}},
                    "offset": offset,
                    "limit": 200,
                    "sort": "NAME_ASC",
                },
            ).json()
            found |= {v["name"]: v["value"] for v in page if v["name"].startswith(prefix)}
            if len(page) < 200:
                return found
            offset += 200


def read_registrations() -> tuple[list[Registration], list[str]]:
    """Every valid registration, and one line for each `sftp_watch_*` Variable that is not one."""
    found, problems = [], []
    for name, value in variables_like(PREFIX).items():
        try:
            found.append(Registration.model_validate(value))
        except ValidationError as exc:
            problems.append(_problem(name, exc))
    return found, problems


def unregister(customer_key: str) -> None:
    Variable.unset(variable_for(PREFIX, customer_key))
    Variable.unset(variable_for(SEEN_PREFIX, customer_key))
    Variable.unset(variable_for(APPLIED_PREFIX, customer_key))


SEEN_PREFIX = "sftp_seen_"


class Seen(BaseModel):
    """What the watcher last saw of a customer: its own Variable, so the watcher never overwrites a
    registration that a flow changed in the meantime."""

    last_upload_at: datetime | None = None
    overdue_alerts: int = Field(default=0, description="Missed periods already alerted since the last upload")


def seen(customer_key: str) -> Seen:
    """What the watcher last saw; `InvalidVariable` (one line naming it) if the Variable is not that."""
    name = variable_for(SEEN_PREFIX, customer_key)
    value = Variable.get(name)
    try:
        return Seen.model_validate(value) if value else Seen()
    except ValidationError as exc:
        raise InvalidVariable(_problem(name, exc)) from None


def valid_seen(name: str, value) -> Seen | None:
    """A `sftp_seen_*` Variable's value, or None (logged) when it is not valid: the others still count."""
    try:
        return Seen.model_validate(value)
    except ValidationError as exc:
        logger.warning("Skipped: %s", _problem(name, exc))
        return None


APPLIED_PREFIX = "sftp_applied_"


def last_applied(customer_key: str) -> str | None:
    """The claimed name of the newest upload applied to the customer's hub (claims sort oldest first)."""
    value = Variable.get(variable_for(APPLIED_PREFIX, customer_key))
    return value if isinstance(value, str) and value else None


def note_applied(customer_key: str, upload: str) -> None:
    """Remember `upload` as applied, unless a newer claim is already remembered (written only by
    process-upload, one upload of a customer at a time)."""
    newest = last_applied(customer_key)
    if newest is None or upload > newest:
        Variable.set(variable_for(APPLIED_PREFIX, customer_key), upload, overwrite=True)


def note_seen(customer_key: str, state: Seen) -> None:
    Variable.set(variable_for(SEEN_PREFIX, customer_key), json.loads(state.model_dump_json()), overwrite=True)
