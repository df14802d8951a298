"""The project's web app (`hris-runbook setup-links`): where it is served and the key that signs its links."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, ValidationError, field_validator

MIN_SECRET_BYTES = 32


def check_secret(secret: str | None, what: str = "the signing secret") -> str:
    """Refuse a key anyone could guess or brute-force; the message never repeats the key."""
    if len((secret or "").encode()) < MIN_SECRET_BYTES:
        raise ValueError(
            f"{what} must be at least {MIN_SECRET_BYTES} bytes of random text "
            "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return secret


class WebApp(Block):
    """The public address of `hris-runbook setup-links` and the key that signs the links it serves
    (member-export upload pages; setup links too when the WorkOS block has none of its own).

    Example:
        ```python
        from blocks.web_app import WebApp
        web = WebApp.load("default")
        print(web.url)
        ```
    """

    _block_type_name = "HRIS Runbook Web App"
    _description = "Where `hris-runbook setup-links` is reachable, and the key that signs its links."

    model_config = ConfigDict(hide_input_in_errors=True)  # a rejected value may be a secret

    url: str = Field(
        title="Public URL",
        description="Base URL at which people reach `hris-runbook setup-links`, e.g. https://hris.10kc.com",
    )
    signing_secret: SecretStr = Field(
        title="Signing secret",
        description="Key that signs the app's links: a random string of at least 32 bytes, kept secret",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a local sandbox)")
        return url.rstrip("/")

    @field_validator("signing_secret")
    @classmethod
    def _secret_long_enough(cls, secret: SecretStr) -> SecretStr:
        check_secret(secret.get_secret_value(), "signing_secret")
        return secret


class WebAppNotConfigured(RuntimeError):
    """Neither a Web App block nor a WorkOS block with setup links says where the app is."""


def load_web_app(name: str = "default") -> WebApp:
    """The Web App block; without one, the WorkOS block's setup-links URL and secret (older setups)."""
    from blocks import BlockNotConfigured, WorkOSCredentials, load_block, optional_block

    try:
        return load_block(WebApp, name)
    except BlockNotConfigured:
        pass
    workos = optional_block(WorkOSCredentials, name)
    if workos is None or not workos.setup_links_url or workos.setup_links_secret is None:
        raise WebAppNotConfigured(
            f"No {WebApp.get_block_type_name()} block named {name!r} and no WorkOS Credentials block with "
            "setup_links_url: create one of them in the Prefect UI (Blocks) or run `make up`"
        )
    try:
        return WebApp(url=workos.setup_links_url, signing_secret=workos.setup_links_secret)
    except ValidationError as exc:
        raise WebAppNotConfigured(f"WorkOS Credentials block {name!r}: setup_links_url is not a URL") from exc
