"""Every name that two parts of the project must agree on, defined once.

The flows write these names into Prefect (pause keys, run inputs, artifacts, deployments) and onto
the SFTP server; the web app (Slack buttons, the board), the watcher and the reminders read them
back. Runs already waiting carry them, so a value here never changes without a tested migration.
`tests/test_contracts.py` fails when one of these strings is written anywhere else.
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.input.run_input import Keyset

from tasks.customer import key_in_alphabet

# --- deployments (each deployment is named after its flow: "<flow>/<flow>") ------------------------
SETUP_GUIDES = "setup-guides"
API_INTEGRATION = "api-integration"
SFTP_INTEGRATION = "sftp-integration"
PROCESS_UPLOAD = "process-upload"
MAPPING_REVIEW = "mapping-review"  # scheduled daily; not a runbook path, so not on the board's runs
RUNBOOK_FLOWS = (SETUP_GUIDES, API_INTEGRATION, SFTP_INTEGRATION, PROCESS_UPLOAD)


def deployment_name(flow: str) -> str:
    """The deployment prefect.yaml gives a flow."""
    return f"{flow}/{flow}"


# --- gates: the pause keys a run waits under ---------------------------------------------------------
# Email reviews: each email's gate, and its once-key step (`once--<customer>--<step>`: an email is
# sent once per customer and step, so renaming one would send it again).
SETUP_GUIDES_EMAIL = "setup-guides-email"
API_IMPLEMENTATION_EMAIL = "api-implementation-email"
API_FINAL_SUMMARY = "api-final-summary"
SFTP_IMPLEMENTATION_EMAIL = "sftp-implementation-email"
SFTP_REVIEW_EMAIL = "sftp-review-email"
UPLOAD_RECEIPT = "upload-receipt"  # reviewed inside apply-files; its own gate only as email-unclear-…
CUSTOMER_CHOICE = "customer-choice"
WORKOS_ORGANIZATION = "workos-organization"
WORKOS_SETUP_LINK = "workos-setup-link"
MAPPING_TABLE = "mapping-table"  # asked as mapping-table-1, -2… until the table is clean
SEGMENTS_PLAN = "segments-plan"
SEGMENTS_CHECKLIST = "segments-checklist"
INTEGRATION_ON = "integration-on"
SUMMARY_CADENCE = "summary-cadence"
CUSTOMER_READY = "customer-ready"
CUSTOMER_CONFIRMED = "customer-confirmed"
MEMBER_EXPORT = "member-export"  # member-export, then member-export-2…
QUEUED = "queued"  # an upload waiting behind an older one: queued-1, -2…
MASS_DELETION = "mass-deletion"
APPLY_FILES = "apply-files"
MAPPING_REVIEW_EMAIL = "mapping-review-email"  # once-key step: mapping-review-email-<period>


def review_email_step(period: str) -> str:
    """The once-key step of one period's mapping-review email (sent once per customer and period)."""
    return f"{MAPPING_REVIEW_EMAIL}-{period}"


EMAIL_UNCLEAR = "email-unclear"  # an email whose sending was cut off: did it arrive? (per email step)


def unclear_email(step: str) -> str:
    """The pause key asking whether the email of `step` arrived (email-unclear-setup-guides-email)."""
    return f"{EMAIL_UNCLEAR}-{step}"


# Signals: one flow resumes another that waits under this key.
PRODUCTION_UPLOAD = "production-upload"

# Every gate a run can wait at (docs/csm-guide.md says what each asks).
GATES = (
    SETUP_GUIDES_EMAIL,
    CUSTOMER_CHOICE,
    WORKOS_ORGANIZATION,
    WORKOS_SETUP_LINK,
    API_IMPLEMENTATION_EMAIL,
    MAPPING_TABLE,
    SEGMENTS_PLAN,
    SEGMENTS_CHECKLIST,
    INTEGRATION_ON,
    SUMMARY_CADENCE,
    API_FINAL_SUMMARY,
    SFTP_IMPLEMENTATION_EMAIL,
    CUSTOMER_READY,
    SFTP_REVIEW_EMAIL,
    CUSTOMER_CONFIRMED,
    PRODUCTION_UPLOAD,
    QUEUED,
    MEMBER_EXPORT,
    MASS_DELETION,
    APPLY_FILES,
    MAPPING_REVIEW_EMAIL,
    EMAIL_UNCLEAR,
)

# Who owes the answer at a gate other than the CSM's.
WAITING_ON = {
    INTEGRATION_ON: "engineering",
    MAPPING_TABLE: "customer",
    CUSTOMER_CHOICE: "customer",
    CUSTOMER_READY: "customer",
    CUSTOMER_CONFIRMED: "customer",
    PRODUCTION_UPLOAD: "customer",
}

_ASKED_AGAIN = re.compile(r"(-again)?-\d+$")


def numbered(gate: str, attempt: int) -> str:
    """The pause key of a gate asked more than once (mapping-table-2, queued-3)."""
    return f"{gate}-{attempt}"


def asked_again(key: str, attempt: int) -> str:
    """The pause key under which a gate whose answer could not be used is asked again."""
    return f"{key}-again-{attempt}"


def gate_of(pause_key: str) -> str:
    """The gate a pause key belongs to, without its attempt number (or the email it asks about)."""
    gate = _ASKED_AGAIN.sub("", pause_key)
    return EMAIL_UNCLEAR if gate.startswith(f"{EMAIL_UNCLEAR}-") else gate


def answer_keysets(key: str) -> list[Keyset]:
    """Where Prefect keeps the form and answer of a gate: suspended (deployment) and paused runs."""
    from prefect.input.run_input import keyset_from_base_key  # this module stays importable without Prefect

    return [keyset_from_base_key(f"{mode}-{key}") for mode in ("suspended", "paused")]


def answer_keyset(key: str, suspended: bool) -> Keyset:
    """The keyset of a gate, as Prefect's suspend_flow_run / pause_flow_run name it."""
    return answer_keysets(key)[0 if suspended else 1]


# --- Variables (one per customer: `<prefix><key in the Variable alphabet>`) ---------------------------
API_CUSTOMER_PREFIX = "api_customer_"  # an API customer's mapping table and review cadence
MAPPING_REVIEW_PREFIX = "mapping_review_"  # a customer's last mapping review


# --- Slack buttons: the forms a click can answer -----------------------------------------------------
# A form class declares `slack_form` (one of these names); a click fills in what the UI form would.
APPROVAL_FORM = "approval"
INTEGRATION_ON_FORM = "integration-on"
BUTTON_LABELS = {
    APPROVAL_FORM: ("Approve", "Reject"),
    INTEGRATION_ON_FORM: ("It is turned on", None),
}
# Notices posted before the forms had names carry the form's class name in their buttons.
_OLD_FORM_NAMES = {
    "Approval": APPROVAL_FORM,
    "EmailReview": APPROVAL_FORM,
    "IntegrationOn": INTEGRATION_ON_FORM,
}


def slack_form_of(name: str) -> str | None:
    """The button form a notice names (today's name or an older notice's class name); None if unknown."""
    name = _OLD_FORM_NAMES.get(name, name)
    return name if name in BUTTON_LABELS else None


def click_answer(slack_form: str, who: str, decision: str, reason: str = "") -> dict[str, str]:
    """The run input a button click gives, field for field as the UI form would."""
    if slack_form == INTEGRATION_ON_FORM:
        return {"confirmed_by": who, "notes": "confirmed in Slack"}
    answer = {"decision": decision, "approver": who}
    return answer | {"reason": reason} if reason else answer


# --- artifacts ---------------------------------------------------------------------------------------
def artifact_key(*parts: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:200]


PROGRESS_ARTIFACT = "progress"
UPLOAD_ARTIFACT = "upload"


def progress_artifact(flow: str, customer_key: str) -> str:
    """The key of a customer's progress table for one flow (the board reads the latest)."""
    return artifact_key(PROGRESS_ARTIFACT, flow, key_in_alphabet(customer_key, "-"))


def upload_artifact(customer_key: str) -> str:
    """The key of a customer's latest upload table."""
    return artifact_key(UPLOAD_ARTIFACT, key_in_alphabet(customer_key, "-"))


# --- the SFTP inbox layout ----------------------------------------------------------------------------
PROCESSING = "processing"  # claimed uploads, one per run
ARCHIVE = "archive"  # handled uploads
REFUSED = "refused"  # uploads that could not be used
WORK_DIRS = (PROCESSING, ARCHIVE, REFUSED)


def inbox_folder(inbox: str, folder: str, name: str = "") -> str:
    """A path inside a customer's inbox: `inbox_folder(inbox, PROCESSING, upload)`."""
    return posixpath.join(inbox, folder, name) if name else posixpath.join(inbox, folder)


# --- the worker's files folder: `<files dir>/<customer key>/<upload stem>/` ---------------------------
# Beside the generated files, the inputs they were made from, for update-mapping's what-if
# (tasks/mapping_whatif.py); purge-old-files deletes them with the folder after the retention.
KEPT_INPUTS = "inputs"
KEPT_UPLOAD = "upload.csv"
KEPT_MEMBERS = "members.csv"
MAPPING_WHATIF_ARTIFACT = "mapping-whatif"


# --- monitoring: Prefect automations that watch the watcher (cli/monitoring.py) ---------------------
# The Prefect server runs them (not our worker), posting through one notification block of this name:
# a "Slack Webhook" block (production) or a "Custom Webhook" block (the sandbox's, at the stand-in).
SFTP_WATCH = "sftp-watch"
MONITORING_BLOCK = "hris-monitoring"
MONITORING_BLOCK_TYPES = ("slack-webhook", "custom-webhook")  # block type slugs, looked up in this order
AUTOMATION_WATCH_SILENT = "hris-runbook: sftp-watch has not completed"
AUTOMATION_NO_WORKER = "hris-runbook: no healthy worker"
AUTOMATION_CRASHED = "hris-runbook: a flow run crashed"
AUTOMATIONS = (AUTOMATION_WATCH_SILENT, AUTOMATION_NO_WORKER, AUTOMATION_CRASHED)
WATCH_WINDOW_SECONDS = (
    2700  # sftp-watch runs every 15 minutes: three missed ticks (HRIS_WATCH_WINDOW_SECONDS)
)
