"""A validation error names the field and the problem, never a secret's value."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, SecretStr, ValidationError, field_validator

from blocks import (
    GoogleSheetsCredentials,
    SftpServer,
    SlackWorkspace,
    SmtpServer,
    TenKCHub,
    WorkOSCredentials,
)
from tasks.customer import describe_validation_error

SECRET = "sk_test_SECRETVALUE0123456789"
NUMERIC_SECRET = 987654321987654321

BAD_BLOCKS = [
    (WorkOSCredentials, {"api_key": SECRET, "setup_links_url": "https://links.example"}),
    (WorkOSCredentials, {"api_key": SECRET, "environment": "prod"}),
    (WorkOSCredentials, {"api_key": NUMERIC_SECRET}),
    (SlackWorkspace, {"bot_token": SECRET, "product_support_channel": "support"}),
    (SlackWorkspace, {"bot_token": NUMERIC_SECRET}),
    (SmtpServer, {"username": "cs", "password": SECRET}),  # no host
    (SmtpServer, {"host": "smtp.example", "from_address": "cs@10kc.example", "password": SECRET}),
    (GoogleSheetsCredentials, {"service_account_info": SECRET}),  # not JSON
    (TenKCHub, {"api_token": SECRET, "timeout_seconds": -1}),
    (TenKCHub, {"api_token": NUMERIC_SECRET}),
    (SftpServer, {"private_key": SECRET, "host_key": "nonsense"}),
]


@pytest.mark.parametrize(("block_type", "values"), BAD_BLOCKS)
def test_a_block_validation_error_never_shows_the_secret(block_type, values):
    with pytest.raises(ValidationError) as caught:
        block_type(**values)
    shown = [str(caught.value), repr(caught.value), describe_validation_error(caught.value)]
    for text in shown:
        for secret in (SECRET, str(NUMERIC_SECRET)):
            assert secret[:8] not in text, text
    assert "\n" not in describe_validation_error(caught.value)


class Form(BaseModel):
    """A form whose own check quotes the value it refuses (fine for a name, not for a key)."""

    name: str
    api_key: SecretStr | str

    @field_validator("name", "api_key")
    @classmethod
    def _no_spaces(cls, value):
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if " " in text:
            raise ValueError(f"{text!r} contains a space")
        return value


def test_describe_validation_error_hides_a_secret_field_but_quotes_a_plain_one():
    with pytest.raises(ValidationError) as caught:
        Form(name="Acme Corp", api_key="sk live SECRET")
    message = describe_validation_error(caught.value)
    assert "name: 'Acme Corp' contains a space" in message
    assert "SECRET" not in message and "api_key:" in message
