"""Signed tokens for the links the web app serves: made by flows (setup links, member-export links),
checked by the app's pages. No Prefect and no web framework here, so both sides can import it.

A token is "2." + base64url(payload) + "." + HMAC-SHA256(payload) under a key derived from the
secret and the token's purpose, so a token made for one page never opens another. Decoding is
strict: the base64url alphabet only, no padding, canonical. Tokens of the first format
(base64url(payload) + "." + HMAC(purpose + payload) under the secret itself, emailed before this
change; setup links live 30 days) are still accepted, each for its own page only (`legacy`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence

from blocks.web_app import check_secret

VERSION = "2"
B64URL = re.compile(r"[A-Za-z0-9_-]+")


class LinkError(Exception):
    """A link that cannot be used: the HTTP status and the sentence shown to the person who clicked."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    """Strict base64url without padding: ValueError for any other character, a length no encoding
    has, or stray bits in the last character (two spellings of the same bytes)."""
    if not B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not canonical base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not canonical base64url") from None
    if b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


def purpose_key(secret: str, purpose: str) -> bytes:
    """The key of one purpose: HMAC(secret, label NUL purpose), so no two purposes share a key."""
    return hmac.new(secret.encode(), b"hris-runbook token key\0" + purpose.encode(), hashlib.sha256).digest()


def signature(secret: str, payload: str, purpose: str) -> str:
    return b64(hmac.new(purpose_key(secret, purpose), payload.encode(), hashlib.sha256).digest())


def legacy_signature(secret: str, payload: str, purpose: str) -> str:
    """The first format's signature: HMAC(secret, purpose + payload)."""
    return b64(hmac.new(secret.encode(), (purpose + payload).encode(), hashlib.sha256).digest())


def seal(secret: str, text: str, purpose: str) -> str:
    """A token carrying `text` for `purpose`, which only the holder of `secret` can make."""
    payload = b64(text.encode())
    return f"{VERSION}.{payload}.{signature(check_secret(secret), payload, purpose)}"


def unseal(
    secret: str | Sequence[str], token: str, invalid: str, purpose: str, legacy: str | None = None
) -> str:
    """The text inside a token signed with `secret` for `purpose` (or, in the first format, for the
    first format's purpose string `legacy`); LinkError(403, invalid) for anything else.

    `secret` may be a list: the current key first, then the previous ones still accepted after a
    rotation (links already emailed stay valid until they expire)."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    parts = token.split(".")
    if len(parts) == 3 and parts[0] == VERSION:
        payload, sig, expected = parts[1], parts[2], signature
        wanted = purpose
    elif len(parts) == 2 and legacy is not None:
        payload, sig, expected = parts[0], parts[1], legacy_signature
        wanted = legacy
    else:
        raise LinkError(403, invalid)
    try:
        unb64(sig)
        data = unb64(payload)
    except ValueError:
        raise LinkError(403, invalid) from None
    matches = [hmac.compare_digest(sig.encode(), expected(key, payload, wanted).encode()) for key in secrets]
    if not any(matches):
        raise LinkError(403, invalid)
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise LinkError(403, invalid) from None
