"""SMTP stand-in (aiosmtpd): accepts every message and keeps it as an .eml file, in arrival order.

Like a real relay it has a message size limit (25 MB by default, `max_message_bytes`): EHLO
advertises it as `SIZE`, and a larger message is refused with 552, at MAIL FROM when the client
declares its size, else at the end of DATA.

Faults can be injected at the DATA command (`MailSink.inject`): a temporary or permanent refusal,
a hang past the client's timeout, a dropped connection, or a reply lost after the message was kept.
"""

from __future__ import annotations

import asyncio
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

# What the server replies to DATA for each injected refusal.
REPLIES = {
    "rate_limit": "451 4.7.1 Too many messages, slow down and try again later",
    "server_error": "451 4.3.0 Local error in processing, try again later",
    "rejected": "554 5.7.1 Message rejected",
}
FAULTS = (*REPLIES, "hang", "drop", "lost_answer", "kept_then_hang")
MAX_MESSAGE_BYTES = 25 * 1024 * 1024  # what common relays accept (Gmail, Microsoft 365: 25 MB)


class MailSink:
    """aiosmtpd handler that writes each message to `<folder>/<n>.eml` (written then renamed)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = [int(p.stem) for p in self.folder.glob("*.eml") if p.stem.isdigit()]
        self._numbers = itertools.count(max(existing, default=0) + 1)
        self._lock = threading.Lock()
        self._faults: list[list] = []  # [kind, times left, hang seconds]
        self.faults_served: list[str] = []
        self.data_commands = 0  # DATA commands received, faulted or not
        self.sessions = 0  # EHLO commands received (one per connection; two with STARTTLS)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self._lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    def inject(self, fault: str, times: int = 1, hang_seconds: float = 30.0) -> None:
        """Serve `fault` to the next `times` DATA commands.

        rate_limit / server_error: a 451 (temporary) reply; rejected: a 554 (permanent) reply;
        hang: no reply for `hang_seconds`, then the connection is closed and the message not kept;
        drop: the connection is closed, the message not kept; lost_answer: the message is kept,
        then the connection is closed before the 250 reply; kept_then_hang: the message is kept,
        then no reply for `hang_seconds` (a worker can be killed while it waits).
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose one of {', '.join(FAULTS)}")
        with self._lock:
            self._faults.append([fault, times, hang_seconds])

    def _take_fault(self) -> tuple[str, float] | None:
        with self._lock:
            self.data_commands += 1
            for fault in self._faults:
                if fault[1] > 0:
                    fault[1] -= 1
                    self.faults_served.append(fault[0])
                    return fault[0], fault[2]
        return None

    async def handle_DATA(self, server, session, envelope: Envelope) -> str:
        fault = self._take_fault()
        if fault is not None and fault[0] in REPLIES:
            return REPLIES[fault[0]]
        if fault is not None and fault[0] == "hang":
            await asyncio.sleep(fault[1])
        if fault is not None and fault[0] in ("hang", "drop"):
            server.transport.abort()
            return "421 4.4.2 connection dropped"  # never reaches the client
        self._keep(envelope)
        if fault is not None and fault[0] == "lost_answer":
            server.transport.abort()
        if fault is not None and fault[0] == "kept_then_hang":
            await asyncio.sleep(fault[1])
            server.transport.abort()
        return "250 Message accepted for delivery"

    def _keep(self, envelope: Envelope) -> None:
        with self._lock:
            number = next(self._numbers)
        target = self.folder / f"{number:05d}.eml"
        partial = target.with_suffix(".eml.part")
        recipients = "".join(f"X-Envelope-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos)
        partial.write_bytes(recipients.encode() + envelope.original_content)
        os.replace(partial, target)

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
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> Controller:
    """Start the stand-in in a background thread; call `.stop()` on the result to end it.

    With `tls_context` it offers STARTTLS and requires it, or with `implicit_tls` speaks TLS from
    the first byte (port 465 style); with `login` it requires AUTH with that user and password
    (over TLS when there is a `tls_context`). A message over `max_message_bytes` gets 552 (SIZE).
    """
    options: dict = {"data_size_limit": max_message_bytes}
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
    # ready_timeout: aiosmtpd gives its thread 5 s to start and answer, too few on a busy machine
    controller = Controller(MailSink(folder), hostname=host, port=port, ready_timeout=60, **options)
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
