"""Product support requests in Slack (API step 4, SFTP steps 2 and 6): posted once per customer and step."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger

from blocks.slack import SlackWorkspace
from tasks.customer import Customer
from tasks.once import once_task
from tasks.records import SupportRequest
from tasks.slack import Slack
from tasks.templating import render

API_FEATURES = [
    "Bulk invite CSV template generation",
    "profile updates",
    "profile deletions",
    "profile deactivations",
]


def api_support_request(customer: Customer, workos_org_url: str, mapping_url: str, run_url: str) -> str:
    """The runbook's API request: tenant URL, WorkOS organization page, mapping table, features."""
    return render(
        "slack/support_request_api.md.j2",
        company=customer.company_name,
        csm_name=customer.csm.name,
        implementation_manager=customer.implementation_manager.name,
        tenant_url=customer.tenant_url,
        workos_org_url=workos_org_url,
        mapping_url=mapping_url,
        run_url=run_url,
    )


def sftp_support_request(customer: Customer, purpose: str, sample_name: str | None, run_url: str) -> str:
    """The runbook's SFTP request: sample CSV (attached in the thread), tenant, hub, CSM, IM."""
    return render(
        "slack/support_request_sftp.md.j2",
        purpose=purpose,
        company=customer.company_name,
        sample_name=sample_name or "",
        tenant_url=customer.tenant_url,
        hub_url=customer.hub_url,
        csm_name=customer.csm.label,
        implementation_manager=customer.implementation_manager.label,
        run_url=run_url,
    )


def post_request(
    slack: SlackWorkspace, text: str, attachment: Path | None = None, once_key: str | None = None
) -> SupportRequest:
    """Post to the product-support channel; an attachment goes into the request's thread. With the
    step's `once_key`, what a run cut off before it (a killed worker) posted is found, not repeated."""
    poster = Slack(slack)
    channel = slack.product_support_channel
    posted = poster.post(channel, text, once_key=once_key)
    file_id = None
    if attachment is not None:
        file_id = poster.share_file(
            channel, attachment, comment="Sample CSV", thread_ts=posted.ts, once_key=once_key
        )
    return SupportRequest(
        channel=channel, ts=posted.ts, permalink=posted.permalink, attachment_file_id=file_id
    )


@once_task(
    "post-support-request",
    retries=2,
    retry_delay_seconds=10,
)
def post_support_request(
    slack: SlackWorkspace, text: str, once_key: str, attachment: Path | None = None
) -> SupportRequest:
    """Post a support request once per `once_key`; a re-run returns the first post's record."""
    request = post_request(slack, text, attachment, once_key)
    get_run_logger().info("Support request posted in %s: %s", request.channel, request.permalink)
    return request
