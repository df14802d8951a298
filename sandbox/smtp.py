"""SMTP stand-in (aiosmtpd): accepts every message and keeps it as an .eml file, in arrival order."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import threading
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope


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


def start_smtp(folder: Path, port: int, host: str = "127.0.0.1") -> Controller:
    """Start the stand-in in a background thread; call `.stop()` on the result to end it."""
    controller = Controller(MailSink(folder), hostname=host, port=port)
    controller.start()
    return controller
