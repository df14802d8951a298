"""Customers registered for SFTP watching (SFTP step 7): one Prefect Variable each, `sftp_watch_<key>`.

A Variable holds at most 5,000 JSON characters, so a registration keeps only what the watcher and
process-upload need; member data never goes in.
"""

from __future__ import annotations

import json
from typing import Literal

from prefect.client.orchestration import get_client
from prefect.variables import Variable
from pydantic import BaseModel, Field

from tasks.customer import Customer

PREFIX = "sftp_watch_"
MAX_CHARS = 5000


class Registration(BaseModel):
    customer: Customer
    mode: Literal["onboarding", "production"] = Field(
        description="onboarding: files go to the account channel; production: to the monitoring channel"
    )
    mapping_link: str = Field(
        description="The data mapping table (Google Sheets link, or a file path on the worker)"
    )
    members_csv: str | None = Field(
        default=None, description="Latest hub member export on the worker, used when no hub API is configured"
    )
    sftp_block: str = Field(default="default", description="Name of the SFTP Server block holding this inbox")
    waiting_run_id: str | None = Field(
        default=None, description="An sftp-integration run waiting for this upload"
    )
    watching: bool = Field(default=True, description="Whether sftp-watch polls this inbox (from SFTP step 7)")

    @property
    def variable_name(self) -> str:
        return PREFIX + self.customer.key.replace("-", "_")


def register(registration: Registration) -> None:
    value = json.loads(registration.model_dump_json())
    size = len(json.dumps(value))
    if size > MAX_CHARS:
        raise ValueError(
            f"registration for {registration.customer.key} is {size} characters; Variables hold {MAX_CHARS}"
        )
    Variable.set(registration.variable_name, value, overwrite=True)


def registration(customer_key: str) -> Registration | None:
    value = Variable.get(PREFIX + customer_key.replace("-", "_"))
    return Registration.model_validate(value) if value else None


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
    Variable.unset(PREFIX + customer_key.replace("-", "_"))
