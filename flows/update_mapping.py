"""`update-mapping`: the customer sends a new data mapping table after go-live (new fields or values).

Runbook: "if there are any new fields or new field values, a new data mapping table has to be
provided to 10KC". The table is checked (the report goes back to the customer until it is clean),
the hub gets what is missing (plan, approval, apply), then later SFTP uploads use the new table.
"""

from datetime import UTC, datetime

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tasks.approvals import ends_on_rejection, wait_settings
from tasks.contracts import artifact_key
from tasks.customer import Customer, key_in_alphabet
from tasks.mapping_cadence import note_api_table
from tasks.naming import run_name
from tasks.progress import Progress
from tasks.registry import registration, update_registration
from tasks.steps import check_mapping_table, update_hub_segments

STEPS = [
    "Check the new data mapping table",
    "Hub segments",
    "Later uploads use the new table",
]


@task(name="use-mapping-for-uploads", cache_policy=NO_CACHE)
def use_for_uploads(customer: Customer, link: str) -> str:
    """Point the customer's SFTP registration at the new table, so process-upload reads it from now on.

    Only `mapping_link` (and its date, which mapping-review reads) changes, on the registration as it
    is then (under its lock), so whatever process-upload changes at the same moment is kept too. An API
    customer has no registration: their API record keeps the table's date (engineering's sync keeps
    the sheet link it was given).
    """
    reg = registration(customer.key)
    if reg is None:
        if note_api_table(customer.key, link):  # mapping-review does not ask again this period
            return "kept as the API customer's table"
        return "no SFTP registration: nothing else uses the table"
    if reg.mapping_link == link:
        update_registration(customer.key, mapping_updated_at=datetime.now(UTC))  # a new table: reviewed
        return "SFTP uploads already use this table"
    update_registration(customer.key, mapping_link=link)
    get_run_logger().info("SFTP uploads of %s now use the new mapping table", customer.key)
    return "later SFTP uploads use this table"


@flow(name="update-mapping", flow_run_name=run_name("update-mapping"))
@ends_on_rejection
def update_mapping(customer: Customer, sheet_link: str) -> dict:
    """Check the new table, add what is missing in the hub after approval, then use it for uploads.

    Args:
        customer: The customer whose data mapping table changed.
        sheet_link: The new data mapping table (Google Sheets link, shared with the service account).
    """
    wait = wait_settings()
    progress = Progress("update-mapping", customer.company_name, customer.key, STEPS)

    progress.mark(1, "working")
    link, table = check_mapping_table(customer, wait, sheet_link, customer.csm.name)
    progress.mark(1, "done", f"{len(table.fields)} field(s)")

    progress.mark(2, "working")
    segments = update_hub_segments(customer, table, wait)
    progress.mark(2, "done", str(segments))

    progress.mark(3, "working")
    uploads = use_for_uploads(customer, link)
    create_markdown_artifact(
        key=artifact_key("mapping-in-use", key_in_alphabet(customer.key, "-")),
        markdown=f"Data mapping table: {link}\n\n{uploads.capitalize()}.\n",
        description="Data mapping table in use",
    )
    progress.mark(3, "done", uploads)
    return {"mapping_link": link, "segments": segments, "uploads": uploads}
