"""`update-mapping`: the customer sends a new data mapping table after go-live (new fields or values).

Runbook: "if there are any new fields or new field values, a new data mapping table has to be
provided to 10KC". The table is checked (the report goes back to the customer until it is clean),
the hub gets what is missing (plan, approval, apply), then later SFTP uploads use the new table.
"""

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tasks.approvals import ends_on_rejection, wait_settings
from tasks.contracts import MAPPING_WHATIF_ARTIFACT, artifact_key
from tasks.customer import Customer, key_in_alphabet
from tasks.files import use_jemalloc
from tasks.files_dir import files_dir
from tasks.mapping import MappingTable
from tasks.mapping_cadence import note_api_table
from tasks.mapping_whatif import WhatIf, what_if
from tasks.naming import run_name
from tasks.progress import Progress
from tasks.registry import last_applied, registration, update_registration
from tasks.sftp import original_name
from tasks.steps import check_mapping_table, update_hub_segments
from tasks.tabular import InputError
from tasks.templating import render

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


@task(name="compute-mapping-what-if", cache_policy=NO_CACHE)
def mapping_whatif(customer: Customer, table: MappingTable) -> WhatIf | None:
    """What the new table would change on the customer's last applied SFTP upload (tasks/mapping_whatif.py),
    shown at the gate before it is approved; None for a customer without SFTP uploads."""
    if registration(customer.key) is None:
        return None
    claimed = last_applied(customer.key)
    if claimed is None:
        return WhatIf("(none)", unavailable="no upload of this customer is applied yet: nothing to compare")
    kept = files_dir() / customer.key / Path(claimed).stem
    use_jemalloc()  # as process-upload's engine runs
    with tempfile.TemporaryDirectory(prefix="hris-whatif-") as scratch:
        try:
            found = what_if(original_name(claimed), kept, table, Path(scratch))
        except InputError as exc:
            found = WhatIf(original_name(claimed), unavailable=f"its kept files could not be read: {exc}")
    create_markdown_artifact(
        key=artifact_key(MAPPING_WHATIF_ARTIFACT, key_in_alphabet(customer.key, "-")),
        markdown=found.markdown(),
        description="What the new data mapping table would change on the last applied upload",
    )
    get_run_logger().info("What-if on the last applied upload: %s", "; ".join(found.slack_lines()))
    return found


def shown_at_gate(found: WhatIf | None) -> tuple[str, str]:
    """The what-if as the segments gate shows it: markdown for the form, Slack text for the notice."""
    if found is None:
        return "", ""
    slack = render("slack/mapping_whatif.md.j2", upload=found.upload, lines=found.slack_lines())
    return found.markdown(), slack


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
    found = mapping_whatif(customer, table)
    segments = update_hub_segments(customer, table, wait, shown_at_gate(found))
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
