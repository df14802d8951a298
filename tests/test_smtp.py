"""The SMTP block's TLS (STARTTLS and implicit) and login against the aiosmtpd stand-in requiring both."""

from __future__ import annotations

import ssl

import pytest

from blocks import SmtpServer
from sandbox.smtp import self_signed_tls, start_smtp
from tasks.emails import deliver, render_email
from tests.conftest import free_port

DRAFT = render_email(
    "setup_guides_other",
    to=["admin@acme.example"],
    cc=[],
    first_name="Dana",
    csm_name="Casey",
    platform="Oracle",
    api_guide_url="https://help.example.test/api",
    sftp_guide_title="SFTP guide",
    sftp_guide_url="https://help.example.test/sftp",
)


@pytest.fixture
def secure_smtp(tmp_path):
    context, cert = self_signed_tls(tmp_path / "tls")
    controller = start_smtp(tmp_path / "mail", free_port(), tls_context=context, login=("cs-bot", "s3cret"))
    try:
        yield controller, cert
    finally:
        controller.stop()


def block(controller, **overrides) -> SmtpServer:
    settings = dict(
        host="127.0.0.1",
        port=controller.port,
        security="starttls",
        username="cs-bot",
        password="s3cret",
        from_address="cs@10kc.example",
    )
    return SmtpServer(**{**settings, **overrides})


def test_starttls_and_login_deliver_the_message(secure_smtp):
    controller, cert = secure_smtp
    deliver(block(controller, ca_file=str(cert)), DRAFT, "tls-test")
    [message] = controller.handler.messages()
    assert message["To"] == "admin@acme.example"


@pytest.fixture
def implicit_tls_smtp(tmp_path):
    context, cert = self_signed_tls(tmp_path / "tls")
    controller = start_smtp(
        tmp_path / "mail", free_port(), tls_context=context, login=("cs-bot", "s3cret"), implicit_tls=True
    )
    try:
        yield controller, cert
    finally:
        controller.stop()


def test_implicit_tls_and_login_deliver_the_message(implicit_tls_smtp):
    controller, cert = implicit_tls_smtp
    deliver(block(controller, security="ssl", ca_file=str(cert)), DRAFT, "ssl-test")
    [message] = controller.handler.messages()
    assert message["To"] == "admin@acme.example"


@pytest.mark.slow
def test_implicit_tls_refuses_an_untrusted_certificate_and_a_plain_client(implicit_tls_smtp):
    import smtplib

    controller, _ = implicit_tls_smtp
    with pytest.raises(ssl.SSLCertVerificationError):
        deliver(block(controller, security="ssl"), DRAFT, "ssl-test")
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError)):
        deliver(block(controller, security="none", timeout_seconds=3), DRAFT, "ssl-test")
    assert controller.handler.messages() == []


def test_an_untrusted_certificate_is_refused(secure_smtp):
    controller, _ = secure_smtp
    with pytest.raises(ssl.SSLCertVerificationError):
        deliver(block(controller), DRAFT, "tls-test")
    assert controller.handler.messages() == []


def test_a_wrong_password_is_refused(secure_smtp):
    import smtplib

    controller, cert = secure_smtp
    with pytest.raises(smtplib.SMTPAuthenticationError):
        deliver(block(controller, ca_file=str(cert), password="wrong"), DRAFT, "tls-test")
    assert controller.handler.messages() == []


def test_username_and_password_go_together():
    with pytest.raises(ValueError, match="username and password must be given together"):
        SmtpServer(host="h", username="u", from_address="a@b.example")
