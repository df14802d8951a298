"""WorkOS: the customer's organization and its Directory Sync setup link (API step 1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from blocks.web_app import check_secret

if TYPE_CHECKING:
    from workos import WorkOSClient


class WorkOSCredentials(Block):
    """A WorkOS environment's API key, and where our long-lived setup links are served.

    Example:
        ```python
        from blocks.workos import WorkOSCredentials
        workos = WorkOSCredentials.load("default")
        workos.get_client().organizations.list_organizations(domains=["acme.com"])
        ```
    """

    _block_type_name = "WorkOS Credentials"
    _description = "WorkOS API key (Production), and the setup-links endpoint that keeps emailed links valid."

    model_config = ConfigDict(hide_input_in_errors=True)  # a rejected value may be a secret

    api_key: SecretStr = Field(
        title="API key", description="WorkOS API key (sk_…) of the environment, normally Production"
    )
    environment: Literal["production", "staging"] = Field(
        title="Environment",
        default="production",
        description="Which WorkOS environment the key belongs to (the runbook uses Production)",
    )
    base_url: str | None = Field(
        title="WorkOS API base URL",
        default=None,
        description="Leave empty for https://api.workos.com (the sandbox sets its own)",
    )
    dashboard_url: str = Field(
        title="Dashboard URL",
        default="https://dashboard.workos.com",
        description="Base of the organization pages linked in support requests",
    )
    domain_state: Literal["verified", "pending"] = Field(
        title="Domain state",
        default="verified",
        description="State given to the customer's email domains; 'verified' allows authentication from "
        "the organization's email domains, as the runbook's dashboard setting does",
    )
    setup_links_url: str | None = Field(
        title="Setup links URL",
        default=None,
        description="Public base URL of `hris-runbook setup-links`; emailed setup links point there. "
        "Empty: the CSM pastes a link created in the WorkOS dashboard instead",
    )
    setup_links_secret: SecretStr | None = Field(
        title="Setup links secret",
        default=None,
        description="Key that signs setup links (a random string of at least 32 bytes); required with "
        "setup_links_url",
    )
    setup_links_previous_secrets: list[SecretStr] = Field(
        default_factory=list,
        title="Previous setup links secrets",
        description="Keys used before setup_links_secret: setup links they signed still open until they "
        "expire. To rotate, move the current secret here and set a new one; remove an old one when its "
        "links have expired (setup_link_days after the last email it signed)",
    )
    setup_link_days: int = Field(
        title="Setup link lifetime (days)",
        default=30,
        ge=1,
        le=365,
        description="How long an emailed setup link stays valid",
    )

    @field_validator("setup_links_secret")
    @classmethod
    def _secret_long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None:
            check_secret(secret.get_secret_value(), "setup_links_secret")
        return secret

    @field_validator("setup_links_previous_secrets")
    @classmethod
    def _previous_long_enough(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        for secret in secrets:
            check_secret(secret.get_secret_value(), "setup_links_previous_secrets")
        return secrets

    @model_validator(mode="after")
    def _links_need_a_secret(self) -> WorkOSCredentials:
        if self.setup_links_url and not self.setup_links_secret:
            raise ValueError("setup_links_secret is required when setup_links_url is set")
        return self

    def get_client(self) -> WorkOSClient:
        """The SDK client; it retries 429 (after Retry-After) and 5xx on its own."""
        # imported here: the SDK takes ~0.7 s to import, and every flow-run process loads blocks
        from workos import WorkOSClient

        return WorkOSClient(
            api_key=self.api_key.get_secret_value(), base_url=self.base_url, request_timeout=30
        )

    def organization_page(self, organization_id: str) -> str:
        return f"{self.dashboard_url.rstrip('/')}/organizations/{organization_id}"
