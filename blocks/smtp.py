"""The outgoing mail server for the runbook's customer emails."""

from __future__ import annotations

import smtplib
import ssl
from typing import Literal

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from tasks.customer import check_email


class SmtpServer(Block):
    """SMTP server that sends the runbook's emails to customers.

    Example:
        ```python
        from blocks.smtp import SmtpServer
        smtp = SmtpServer.load("default")
        with smtp.get_client() as client:
            client.noop()
        ```
    """

    _block_type_name = "SMTP Server"
    _description = "Outgoing mail server for the HRIS runbook's customer emails."
    model_config = ConfigDict(hide_input_in_errors=True)  # errors never echo a secret

    host: str = Field(title="SMTP host", description="SMTP host name, e.g. smtp.gmail.com")
    port: int = Field(
        title="SMTP port", default=587, ge=1, le=65535, description="SMTP port: 587 STARTTLS, 465 SSL"
    )
    security: Literal["starttls", "ssl", "none"] = Field(
        title="Security",
        default="starttls",
        description="starttls (port 587), ssl (port 465) or none (local only)",
    )
    username: str | None = Field(
        title="Username", default=None, description="Login user name, if the server asks"
    )
    password: SecretStr | None = Field(
        title="Password", default=None, description="Login password or app password"
    )
    from_address: str = Field(
        title="From address",
        description="The From address, e.g. '10KC Customer Success <cs@10kc.com>' or cs@10kc.com",
    )
    default_cc: list[str] = Field(
        title="Default Cc",
        default_factory=list,
        description="Addresses copied on every customer email (the runbook's team CC address)",
    )
    timeout_seconds: float = Field(
        title="Timeout (seconds)", default=30, gt=0, description="Connect and command timeout"
    )
    attachments_limit_mb: float = Field(
        title="Attachments limit (MB)",
        default=15,
        gt=0,
        le=100,
        description="Files totalling more than this (their own size; a third more once encoded for email) "
        "are not attached: the email carries a download link from the web app instead",
    )
    download_link_days: int = Field(
        title="Download link lifetime (days)",
        default=14,
        ge=1,
        le=90,
        description="How long the download link of files too large to attach works",
    )
    ca_file: str | None = Field(
        title="CA file",
        default=None,
        description="PEM file of a private CA to trust (an internal relay); empty: the system's CAs",
    )

    @field_validator("default_cc")
    @classmethod
    def _cc_are_emails(cls, addresses: list[str]) -> list[str]:
        return [check_email(a) for a in addresses]

    @model_validator(mode="after")
    def _login_is_complete(self) -> SmtpServer:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be given together, or neither")
        return self

    def get_client(self) -> smtplib.SMTP:
        """A connected, logged-in SMTP client; use it as a context manager."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout_seconds, context=context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
            if self.security == "starttls":
                client.starttls(context=context)
        if self.username is not None and self.password is not None:
            client.login(self.username, self.password.get_secret_value())
        return client
