"""Signed tokens for the links the web app serves: made by flows (setup links, member-export links),
checked by the app's pages. No Prefect and no web framework here, so both sides can import it.

A token is base64url(payload) + "." + HMAC-SHA256(purpose + payload), keyed by a secret of at least
32 bytes; the purpose keeps a token made for one page from opening another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from blocks.web_app import check_secret


class LinkError(Exception):
    """A link that cannot be used: the HTTP status and the sentence shown to the person who clicked."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signature(secret: str, payload: str, purpose: str = "") -> str:
    return b64(hmac.new(secret.encode(), (purpose + payload).encode(), hashlib.sha256).digest())


def seal(secret: str, text: str, purpose: str = "") -> str:
    """A token carrying `text`, which only the holder of `secret` can make."""
    payload = b64(text.encode())
    return f"{payload}.{signature(check_secret(secret), payload, purpose)}"


def unseal(secret: str, token: str, invalid: str, purpose: str = "") -> str:
    """The text inside a token signed with `secret`; LinkError(403, invalid) for anything else."""
    payload, _, sig = token.partition(".")
    if not (token.isascii() and payload and sig):
        raise LinkError(403, invalid)
    if not hmac.compare_digest(sig.encode(), signature(secret, payload, purpose).encode()):
        raise LinkError(403, invalid)
    try:
        return unb64(payload).decode()
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise LinkError(403, invalid) from None
