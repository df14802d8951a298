"""Long-lived WorkOS setup links: WorkOS portal links expire five minutes after issue, so emails carry
a signed link to our own endpoint, which checks it and redirects to a freshly generated portal link.

Token (tasks/tokens.py) carrying "<organization id>.<expiry unix time>", keyed by the WorkOS block's
`setup_links_secret` (at least 32 bytes). The endpoint itself is webapp/setup_links.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from tasks.tokens import LinkError, seal, unseal

PURPOSE = "setup-link"
LEGACY_PURPOSE = ""  # setup links emailed before tokens had a key per purpose (they live 30 days)
# What Prefect's forms, artifacts and Slack show instead of a setup link: only the email carries it.
SETUP_LINK_SHOWN = "⟨setup link: sent in the email⟩"
INVALID = "This setup link is not valid. Please ask your 10KC contact for a new one."


def sign(secret: str, organization_id: str, expires_at: int) -> str:
    return seal(secret, f"{organization_id}.{expires_at}", PURPOSE)


def make_setup_link(
    base_url: str, secret: str, organization_id: str, days: int, now: float | None = None
) -> str:
    """The link to email: valid for `days`, for this organization only."""
    expires_at = int((now or time.time()) + days * 86400)
    return f"{base_url.rstrip('/')}/setup/{sign(secret, organization_id, expires_at)}"


def setup_link(base_url: str, secret: str, organization_id: str, expires_at: int) -> str:
    """The link for this organization and expiry: the same every time it is made with the same key."""
    return f"{base_url.rstrip('/')}/setup/{sign(secret, organization_id, expires_at)}"


def verify(secret: str | Sequence[str], token: str, now: float | None = None) -> str:
    """The organization id in a valid, unexpired token; LinkError (403/410) otherwise. `secret`: the
    current key, or it and the previous keys still accepted (tasks/tokens.py `unseal`)."""
    organization_id, _, expires = unseal(secret, token, INVALID, PURPOSE, LEGACY_PURPOSE).rpartition(".")
    if not organization_id or not expires.isdigit():
        raise LinkError(403, INVALID)
    if (now or time.time()) > int(expires):
        raise LinkError(410, "This setup link has expired. Please ask your 10KC contact for a new one.")
    return organization_id


def workos_portal_links(credentials) -> Callable[[str], str | None]:
    """A `fresh_portal_link` backed by the WorkOS API (intent dsync)."""
    from workos import NotFoundError

    from tasks.workos import portal_link

    def fresh(organization_id: str) -> str | None:
        try:
            return portal_link(credentials, organization_id)
        except NotFoundError:
            return None

    return fresh
