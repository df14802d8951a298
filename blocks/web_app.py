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

    previous_secrets: list[SecretStr] = Field(
        default_factory=list,
        title="Previous signing secrets",
        description="Keys used before the current one: links they signed still open until they expire. "
        "To rotate, move the current secret here and set a new one; remove an old one when its links "
        "have expired (member-export links live 7 days)",
    )

    internal_user: str = Field(
        default="runbook",
        title="Internal pages: user",
        description="User name for HTTP basic auth on the internal listener (the status board)",
    )
    internal_password: SecretStr | None = Field(
        default=None,
        title="Internal pages: password",
        description="When set, the internal listener (the status board) asks for this password "
        "(HTTP basic auth, at least 16 characters); needed whenever it is bound beyond 127.0.0.1",
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

    @field_validator("previous_secrets")
    @classmethod
    def _previous_long_enough(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        for secret in secrets:
            check_secret(secret.get_secret_value(), "previous_secrets")
        return secrets

    def accepted_secrets(self) -> list[str]:
        """The keys a link may be signed with: the current one first, then the previous ones."""
        return [s.get_secret_value() for s in [self.signing_secret, *self.previous_secrets]]

    @field_validator("internal_password")
    @classmethod
    def _password_long_enough(cls, password: SecretStr | None) -> SecretStr | None:
        if password is not None and len(password.get_secret_value()) < 16:
            raise ValueError("internal_password must be at least 16 characters")
        return password


class WebAppNotConfigured(RuntimeError):
    """The app's blocks are missing or invalid; the message says which and how to fix it, in one line."""


def load_checked(block_type: type[Block], name: str, required: bool = True) -> Block | None:
    """A saved block, None when missing and not required; an invalid one is named in one line."""
    from blocks import BlockNotConfigured, load_block

    try:
        return load_block(block_type, name)
    except BlockNotConfigured:
        if required:
            raise
        return None
    except RuntimeError as exc:  # Block.load wraps the ValidationError of a document saved before a check
        if not isinstance(exc.__cause__, ValidationError):
            raise
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.__cause__.errors()
        )
        raise WebAppNotConfigured(
            f"{block_type.get_block_type_name()} block {name!r} is not valid ({problems}); fix it in the "
            "Prefect UI (Blocks)"
        ) from None


def load_web_app(name: str = "default") -> WebApp:
    """The Web App block; without one, the WorkOS block's setup-links URL and secret (older setups)."""
    from blocks import WorkOSCredentials

    web = load_checked(WebApp, name, required=False)
    if web is not None:
        return web
    workos = load_checked(WorkOSCredentials, name, required=False)
    if workos is None or not workos.setup_links_url or workos.setup_links_secret is None:
        raise WebAppNotConfigured(
            f"No {WebApp.get_block_type_name()} block named {name!r} and no WorkOS Credentials block with "
            "setup_links_url: create one of them in the Prefect UI (Blocks) or run `make up`"
        )
    try:
        return WebApp(
            url=workos.setup_links_url,
            signing_secret=workos.setup_links_secret,
            previous_secrets=workos.setup_links_previous_secrets,
        )
    except ValidationError:
        raise WebAppNotConfigured(
            f"WorkOS Credentials block {name!r}: setup_links_url is not a URL"
        ) from None
