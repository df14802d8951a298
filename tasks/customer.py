"""The customer form a CSM fills in when starting a flow from the Prefect UI."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from tasks.addresses import is_address

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+$")
_CHANNEL = re.compile(r"^#[a-z0-9][a-z0-9_-]{0,79}$")


def check_email(value: str) -> str:
    """Trim an email address and reject anything a mail system would not accept (tasks/addresses.py)."""
    value = value.strip()
    if not is_address(value):
        raise ValueError(f"{value!r} is not a valid email address")
    return value


def check_domain(value: str) -> str:
    """Normalise an email domain; schemes, paths, spaces and '@' are mistakes, not domains."""
    cleaned = value.strip().lower()
    if "://" in cleaned or "/" in cleaned:
        raise ValueError(f"{value!r} must be a bare domain such as acme.com, without a scheme or path")
    if " " in cleaned or "@" in cleaned or not _DOMAIN.match(cleaned):
        raise ValueError(f"{value!r} is not a valid email domain (expected e.g. acme.com)")
    return cleaned


def check_url(value: str) -> str:
    """Accept only absolute http(s) URLs, the form tenant and hub links take."""
    value = value.strip()
    if not re.match(r"^https?://[^\s/]+\.[^\s/]+(/\S*)?$", value):
        raise ValueError(f"{value!r} is not an http(s) URL (expected e.g. https://acme.10kc.com)")
    return value


EmailAddress = Annotated[str, AfterValidator(check_email)]
WebUrl = Annotated[str, AfterValidator(check_url)]


class Person(BaseModel):
    """A 10KC team member named on the form (CSM or implementation manager)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(min_length=1, title="Name", description="Full name")
    email: EmailAddress = Field(title="Email", description="Work email address")

    @property
    def label(self) -> str:
        return f"{self.name} ({self.email})"


class Customer(BaseModel):
    """Everything the runbook needs to know about one customer."""

    model_config = ConfigDict(str_strip_whitespace=True)

    company_name: str = Field(
        min_length=1, title="Company name", description="Customer's company name, e.g. Acme Corp"
    )
    contact_first_name: str = Field(
        min_length=1,
        title="Contact first name",
        description="First name of the customer's HRIS admin (used in 'Hello …')",
    )
    contact_email: EmailAddress = Field(
        title="Contact email", description="Email of the customer's HRIS admin"
    )
    platform: str = Field(
        min_length=1,
        title="HRIS platform",
        description="HRIS / user-directory platform, e.g. Workday, Okta, BambooHR, Oracle HCM",
    )
    email_domains: list[str] = Field(
        min_length=1,
        title="Email domains",
        description="Email domains of the customer's staff, e.g. acme.com",
    )
    tenant_url: WebUrl = Field(title="Tenant URL", description="10KC tenant URL, e.g. https://acme.10kc.com")
    hub_url: WebUrl = Field(title="Hub URL", description="10KC hub URL, e.g. https://acme.10kc.com/hub/main")
    csm: Person = Field(title="CSM", description="Customer success manager")
    implementation_manager: Person = Field(
        title="Implementation manager", description="The 10KC implementation manager for this customer"
    )
    product_manager: Person | None = Field(
        default=None,
        title="Product manager",
        description="Optional: the product manager, named with the production files in Slack",
    )
    slack_channel: str = Field(
        title="Slack account channel", description="Slack account channel, e.g. #am-acme"
    )

    @field_validator("email_domains")
    @classmethod
    def _domains(cls, domains: list[str]) -> list[str]:
        cleaned = [check_domain(d) for d in domains]
        return list(dict.fromkeys(cleaned))

    @field_validator("slack_channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        channel = value.strip().lower()
        if not channel.startswith("#"):
            channel = "#" + channel
        if not _CHANNEL.match(channel):
            raise ValueError(f"{value!r} is not a Slack channel name (expected e.g. #am-acme)")
        return channel

    @property
    def key(self) -> str:
        """A stable identifier for this customer: its primary email domain, exactly (acme.co.uk and
        acme-co.uk stay two customers). Safe as a folder name; `key_in_alphabet` for other names."""
        return self.email_domains[0]


def key_in_alphabet(key: str, separator: str) -> str:
    """A customer key for names without dots (Variables: `_`, artifacts: `-`), still one per customer.

    A dot becomes one separator and each hyphen two: a domain's labels never start or end with a
    hyphen, so an odd run of separators was a dot, an even run hyphens, and no two domains meet.
    """
    return key.replace("-", separator * 2).replace(".", separator)


_SECRET_FIELD = re.compile(r"secret|token|password|passphrase|private_key|api_key|service_account", re.I)


def _secret_values(err: dict[str, Any]) -> list[str]:
    """The values in one error that belong to a secret field (the field itself, or a model's)."""
    values: list[Any] = []
    field = str(err["loc"][-1]) if err["loc"] else ""
    if _SECRET_FIELD.search(field):
        values.append(err.get("input"))
    if isinstance(err.get("input"), dict):
        values += [v for k, v in err["input"].items() if _SECRET_FIELD.search(str(k))]
    texts = [v.get_secret_value() if hasattr(v, "get_secret_value") else v for v in values]
    return [str(t) for t in texts if isinstance(t, str | int) and len(str(t)) >= 4]


def describe_validation_error(exc: Exception) -> str:
    """One line per invalid field, naming the field, for a CSM rather than a developer; the value of
    a secret field (key, token, password…) is never repeated."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    lines = []
    for err in errors():
        field = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        for secret in _secret_values(err):
            message = message.replace(repr(secret), "(hidden)").replace(secret, "(hidden)")
        lines.append(f"{field}: {message}" if field else message)
    return "; ".join(lines).replace("\n", " ")
