"""The 10KC Slack workspace: support requests, file sharing, alerts and approval notices."""

from __future__ import annotations

import re

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, field_validator
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from tasks.customer import check_email


def _channel_name(value: str) -> str:
    name = value.strip().lower()
    if not name.startswith("#") or len(name) < 2 or " " in name:
        raise ValueError(f"{value!r} is not a channel name such as #product-support")
    return name


class SlackWorkspace(Block):
    """A Slack bot in the 10KC workspace.

    Example:
        ```python
        from blocks.slack import SlackWorkspace
        slack = SlackWorkspace.load("default")
        slack.get_client().auth_test()
        ```
    """

    _block_type_name = "Slack Workspace"
    _description = "Slack bot for support requests, HRIS file sharing, alerts and approval notices."
    model_config = ConfigDict(hide_input_in_errors=True)  # errors never echo a secret

    bot_token: SecretStr = Field(title="Bot token", description="Bot user OAuth token (xoxb-…)")
    base_url: str | None = Field(
        title="Slack API base URL",
        default=None,
        description="Web API base URL; leave empty for https://slack.com/api/ (the sandbox sets its own)",
    )
    product_support_channel: str = Field(
        title="Product support channel",
        default="#product-support",
        description="Where support requests go (runbook: #product-support)",
    )
    monitoring_channel: str = Field(
        title="Monitoring channel",
        default="#monitoring-hris-files",
        description="Where production upload files are shared",
    )
    signing_secret: SecretStr | None = Field(
        title="Signing secret",
        default=None,
        description="Signing secret of the Slack app (Basic Information): with it, approval notices carry "
        "Approve / Reject buttons and the web app's /slack/actions endpoint verifies every click",
    )
    team_id: str | None = Field(
        title="Workspace (team) ID",
        default=None,
        description="The Slack workspace's ID (T…, from auth.test or the workspace URL): with it, "
        "/slack/actions refuses clicks from any other workspace; empty = not checked",
    )
    approvers: list[str] = Field(
        title="Approvers",
        default_factory=list,
        description="Emails allowed to answer any gate from Slack, besides each customer's CSM and "
        "implementation manager (e.g. engineering on call)",
    )
    max_retries: int = Field(
        title="Max retries",
        default=4,
        ge=0,
        le=10,
        description="Retries on 429 (honouring Retry-After), 5xx and connection errors",
    )

    @field_validator("product_support_channel", "monitoring_channel")
    @classmethod
    def _is_channel_name(cls, value: str) -> str:
        return _channel_name(value)

    @field_validator("team_id")
    @classmethod
    def _team_id(cls, value: str | None) -> str | None:
        value = (value or "").strip().upper()
        if value and not re.fullmatch(r"[TE][A-Z0-9]{2,}", value):
            raise ValueError(f"{value!r} is not a Slack workspace ID such as T0123ABCD")
        return value or None

    @field_validator("approvers")
    @classmethod
    def _emails(cls, values: list[str]) -> list[str]:
        return [check_email(v).lower() for v in values]

    def get_client(self) -> WebClient:
        """A WebClient that retries rate limits (after Retry-After), server and connection errors."""
        options = {"base_url": self.base_url} if self.base_url else {}
        client = WebClient(token=self.bot_token.get_secret_value(), timeout=30, **options)
        client.retry_handlers = [
            RateLimitErrorRetryHandler(max_retry_count=self.max_retries),
            ServerErrorRetryHandler(max_retry_count=self.max_retries),
            ConnectionErrorRetryHandler(max_retry_count=self.max_retries),
        ]
        return client
