"""The 10KC hub admin API: segments and member uploads (documented in docs/hub-api.md)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr

from tasks.hub import HubClient, check_hub_address


class TenKCHub(Block):
    """Credentials for the hub admin API; without this block the flows give the CSM a checklist.

    Example:
        ```python
        from blocks.hub import TenKCHub
        hub = TenKCHub.load("default")
        segments = hub.get_client("https://acme.10kc.com/hub/main").list_segments()
        ```
    """

    _block_type_name = "10KC Hub"
    _description = "Admin API token for 10KC hubs (segments, member export and bulk uploads)."
    model_config = ConfigDict(hide_input_in_errors=True)  # errors never echo a secret

    api_token: SecretStr = Field(title="API token", description="Admin API token")
    base_url_override: str | None = Field(
        title="Base URL override",
        default=None,
        description="Send every hub's calls to this address instead of the hub URL (the sandbox sets it)",
    )
    timeout_seconds: float = Field(
        title="Timeout (seconds)", default=60, gt=0, description="Per-request timeout"
    )
    allowed_hosts: list[str] = Field(
        title="Allowed hosts",
        default=["*.10kc.com"],
        description="Hosts the admin token may be sent to, over https only ('*.10kc.com': any 10KC hub)",
    )

    def api_base(self, hub_url: str) -> str:
        """Where one hub's admin API lives; refused (before any request) unless the token may go there."""
        if self.base_url_override:
            check_hub_address(self.base_url_override, self.allowed_hosts, loopback_ok=True)
            parts = urlsplit(hub_url)
            hub = quote(parts.netloc + parts.path.rstrip("/"), safe="")
            return f"{self.base_url_override.rstrip('/')}/{hub}/api/admin/v1"
        return check_hub_address(hub_url, self.allowed_hosts).rstrip("/") + "/api/admin/v1"

    def get_client(self, hub_url: str) -> HubClient:
        return HubClient(self.api_base(hub_url), self.api_token.get_secret_value(), self.timeout_seconds)
