"""SMTP stand-in (aiosmtpd): accepts every message and keeps it as an .eml file, in arrival order."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import ssl
import threading
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope


class MailSink:
    """aiosmtpd handler that writes each message to `<folder>/<n>.eml` (written then renamed)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = [int(p.stem) for p in self.folder.glob("*.eml") if p.stem.isdigit()]
        self._numbers = itertools.count(max(existing, default=0) + 1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope: Envelope) -> str:
        with self._lock:
            number = next(self._numbers)
        target = self.folder / f"{number:05d}.eml"
        partial = target.with_suffix(".eml.part")
        recipients = "".join(f"X-Envelope-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos)
        partial.write_bytes(recipients.encode() + envelope.original_content)
        os.replace(partial, target)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, oldest first."""
        return read_mailbox(self.folder)


def read_mailbox(folder: Path) -> list[EmailMessage]:
    """Parse the .eml files a MailSink wrote."""
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(Path(folder).glob("*.eml"))
    ]


def start_smtp(
    folder: Path,
    port: int,
    host: str = "127.0.0.1",
    tls_context: ssl.SSLContext | None = None,
    login: tuple[str, str] | None = None,
    implicit_tls: bool = False,
) -> Controller:
    """Start the stand-in in a background thread; call `.stop()` on the result to end it.

    With `tls_context` it offers STARTTLS and requires it, or with `implicit_tls` speaks TLS from
    the first byte (port 465 style); with `login` it requires AUTH with that user and password
    (over TLS when there is a `tls_context`).
    """
    options: dict = {}
    if tls_context is not None and implicit_tls:
        options |= {"ssl_context": tls_context}
    elif tls_context is not None:
        options |= {"tls_context": tls_context, "require_starttls": True}
    if login is not None:

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = (auth_data.login.decode(), auth_data.password.decode()) == login
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

        options |= {
            "authenticator": authenticate,
            "auth_required": True,
            # aiosmtpd counts only STARTTLS as TLS; with implicit TLS every byte is already encrypted.
            "auth_require_tls": tls_context is not None and not implicit_tls,
        }
    controller = Controller(MailSink(folder), hostname=host, port=port, **options)
    controller.start()
    return controller


def self_signed_tls(folder: Path, host: str = "127.0.0.1") -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for `host` and the certificate file a client must trust (sandbox only)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file
