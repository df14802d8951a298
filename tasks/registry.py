"""Customers registered for SFTP watching (SFTP step 7): one Prefect Variable each, `sftp_watch_<key>`.

A Variable holds at most 5,000 JSON characters, so a registration keeps only what the watcher and
process-upload need; member data never goes in.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Literal

from prefect.client.orchestration import get_client
from prefect.variables import Variable
from pydantic import BaseModel, Field

from tasks.customer import Customer, key_in_alphabet

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
    value = json.loads(registration.model_dump_json())
    size = len(json.dumps(value))
    if size > MAX_CHARS:
        raise ValueError(
            f"registration for {registration.customer.key} is {size} characters; Variables hold {MAX_CHARS}"
        )
    Variable.set(registration.variable_name, value, overwrite=True)


def registration(customer_key: str) -> Registration | None:
    value = Variable.get(variable_for(PREFIX, customer_key))
    found = Registration.model_validate(value) if value else None
    return found if found and found.customer.key == customer_key else None  # not an older key format's


def registrations() -> list[Registration]:
    """Every registered customer, 200 per API call."""
    found, offset = [], 0
    with get_client(sync_client=True) as client:
        while True:
            page = client.request(
                "POST",
                "/variables/filter",
                json={
                    "variables": {"name": {"like_": PREFIX}},
                    "offset": offset,
                    "limit": 200,
                    "sort": "NAME_ASC",
                },
            ).json()
            found += [Registration.model_validate(v["value"]) for v in page if v["name"].startswith(PREFIX)]
            if len(page) < 200:
                return found
            offset += 200


def unregister(customer_key: str) -> None:
    Variable.unset(variable_for(PREFIX, customer_key))
    Variable.unset(variable_for(SEEN_PREFIX, customer_key))


SEEN_PREFIX = "sftp_seen_"


class Seen(BaseModel):
    """What the watcher last saw of a customer: its own Variable, so the watcher never overwrites a
    registration that a flow changed in the meantime."""

    last_upload_at: datetime | None = None
    overdue_alerts: int = Field(default=0, description="Missed periods already alerted since the last upload")


def seen(customer_key: str) -> Seen:
    value = Variable.get(variable_for(SEEN_PREFIX, customer_key))
    return Seen.model_validate(value) if value else Seen()


def note_seen(customer_key: str, state: Seen) -> None:
    Variable.set(variable_for(SEEN_PREFIX, customer_key), json.loads(state.model_dump_json()), overwrite=True)
