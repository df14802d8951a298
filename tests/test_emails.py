"""The setup-guides emails as the customer receives them, read back from the SMTP stand-in."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from blocks import SmtpServer
from tasks.customer import Customer, describe_validation_error
from tasks.emails import EmailTemplateError, deliver, draft_setup_guides_email, render_email
from tasks.platforms import load_catalogue
from tests.conftest import make_customer

HELP = "https://help.example.test"
CATALOGUE = load_catalogue()
RUNBOOK_PLATFORMS = [
    "Access People HR", "Entra ID", "BambooHR", "Breathe HR", "Cezanne HR", "CyberArk", "Fourth",
    "Google Workspace", "Hibob", "JumpCloud", "Okta", "OneLogin", "PingFederate", "Rippling", "Workday",
]  # fmt: skip
ALIASES = {
    "Azure AD": "Entra ID",
    "azure active directory": "Entra ID",
    "Bamboo HR": "BambooHR",
    "bamboohr": "BambooHR",
    "Google": "Google Workspace",
    "G Suite": "Google Workspace",
    "one login": "OneLogin",
    "Ping Federate": "PingFederate",
    "  WORKDAY ": "Workday",
    "Breath HR": "Breathe HR",
    "Jump-Cloud": "JumpCloud",
}


def _smtp_for(controller) -> SmtpServer:
    return SmtpServer(
        host="127.0.0.1",
        port=controller.port,
        security="none",
        from_address="cs@10kc.example",
        default_cc=["team@10kc.example"],
    )


def _send(controller, customer: Customer):
    smtp = _smtp_for(controller)
    draft = draft_setup_guides_email(customer, CATALOGUE, HELP, smtp.default_cc)
    deliver(smtp, draft, "test-key")
    return controller.handler.messages()[-1]


def _parts(message):
    text = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(preferencelist=("html",)).get_content().replace("\r\n", "\n")
    return text, html


def test_the_catalogue_holds_exactly_the_runbooks_fifteen_platforms():
    assert sorted(p.name for p in CATALOGUE.platforms) == sorted(RUNBOOK_PLATFORMS)


@pytest.mark.parametrize("typed", RUNBOOK_PLATFORMS + list(ALIASES))
def test_template_1_for_every_listed_platform_and_alias(smtp_server, typed):
    expected = ALIASES.get(typed, typed)
    guide = CATALOGUE.find(expected).guide_url(HELP)
    customer = make_customer(platform=typed, contact_first_name="Priya")

    message = _send(smtp_server, customer)
    text, html = _parts(message)

    assert message["To"] == customer.contact_email
    assert message["Cc"] == "team@10kc.example, casey@10kc.example"
    assert message["Reply-To"] == "casey@10kc.example"
    assert expected in message["Subject"]
    assert text.startswith("Hello Priya,\n")
    assert f"There are two ways to connect with {expected}:" in text
    assert f"Check out this guide ({guide})." in text
    assert "If these methods don't suit your needs" in text  # only Template 1 says this
    assert f'<a href="{guide}">this guide</a>' in html
    assert f"{HELP}/articles/hris-identity-management-sftp-integration" in html
    assert "{{" not in text and "[" not in text


@pytest.mark.parametrize("typed", ["Oracle HCM", "SAP SuccessFactors", "Personio"])
def test_template_2_for_any_other_platform(smtp_server, typed):
    customer = make_customer(platform=typed)
    message = _send(smtp_server, customer)
    text, html = _parts(message)

    assert text.startswith("Hello Dana,\n")
    assert f"There are two ways to connect with {typed}:" in text
    assert "If your system doesn't support our API integration" in text
    assert "If these methods don't suit your needs" not in text
    api_guide = HELP + CATALOGUE.api_guide_path
    assert f'<a href="{api_guide}">this guide</a>' in html
    assert not any(p.guide_url(HELP) in html for p in CATALOGUE.platforms)


def test_a_missing_template_variable_fails_loudly_naming_it():
    # Drafting never sends (the flows draft before their review gate, sending comes after it), so
    # this checks the refusal only: a template never renders with a blank where a value belongs.
    with pytest.raises(EmailTemplateError, match="'guide_url' is undefined"):
        render_email(
            "setup_guides_platform",
            to=["a@b.example"],
            cc=[],
            first_name="Dana",
            platform="Okta",
            csm_name="Casey",
            sftp_guide_title="SFTP",
            sftp_guide_url="https://x.example",
        )


def test_an_unknown_template_is_named():
    with pytest.raises(EmailTemplateError, match="emails/no_such_email.md.j2 does not exist"):
        render_email("no_such_email", to=["a@b.example"], cc=[])


def test_markup_escapes_html_in_values(smtp_server):
    customer = make_customer(platform="<script>Evil</script>", contact_first_name="Bo & Co")
    text, html = _parts(_send(smtp_server, customer))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Hello Bo &amp; Co," in html and "Hello Bo & Co," in text


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("company_name", "   ", "company_name:"),
        (
            "contact_email",
            "dana.at.acme.com",
            "contact_email: 'dana.at.acme.com' is not a valid email address",
        ),
        ("email_domains", ["https://acme.com"], "email_domains: 'https://acme.com' must be a bare domain"),
        ("email_domains", ["acme .com"], "email_domains: 'acme .com' is not a valid email domain"),
        ("email_domains", [], "email_domains:"),
        ("tenant_url", "acme.10kc.com", "tenant_url: 'acme.10kc.com' is not an http(s) URL"),
        ("slack_channel", "#AM Acme", "slack_channel: '#AM Acme' is not a Slack channel name"),
        ("csm", {"name": "Casey", "email": "casey"}, "csm.email: 'casey' is not a valid email address"),
    ],
)
def test_a_bad_customer_gets_an_error_naming_the_field(field, value, expected):
    with pytest.raises(ValidationError) as caught:
        make_customer(**{field: value})
    message = describe_validation_error(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_customer_values_are_normalised():
    customer = make_customer(email_domains=[" Acme.COM ", "acme.com", "acme.co.uk"], slack_channel="am-acme")
    assert customer.email_domains == ["acme.com", "acme.co.uk"]
    assert customer.slack_channel == "#am-acme"
    assert customer.key == "acme.com"
