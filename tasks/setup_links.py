"""Long-lived WorkOS setup links: WorkOS portal links expire five minutes after issue, so emails carry
a signed link to our own endpoint, which checks it and redirects to a freshly generated portal link.

Token: base64url("<organization id>.<expiry unix time>") + "." + HMAC-SHA256 of that, keyed by the
WorkOS block's `setup_links_secret`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route


class LinkError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signature(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def sign(secret: str, organization_id: str, expires_at: int) -> str:
    payload = _b64(f"{organization_id}.{expires_at}".encode())
    return f"{payload}.{_signature(secret, payload)}"


def make_setup_link(
    base_url: str, secret: str, organization_id: str, days: int, now: float | None = None
) -> str:
    """The link to email: valid for `days`, for this organization only."""
    expires_at = int((now or time.time()) + days * 86400)
    return f"{base_url.rstrip('/')}/setup/{sign(secret, organization_id, expires_at)}"


def verify(secret: str, token: str, now: float | None = None) -> str:
    """The organization id in a valid, unexpired token; LinkError (403/410) otherwise."""
    payload, _, signature = token.partition(".")
    if not payload or not signature or not hmac.compare_digest(signature, _signature(secret, payload)):
        raise LinkError(403, "This setup link is not valid. Please ask your 10KC contact for a new one.")
    try:
        organization_id, expires = (
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().rsplit(".", 1)
        )
        expires_at = int(expires)
    except ValueError:
        raise LinkError(
            403, "This setup link is not valid. Please ask your 10KC contact for a new one."
        ) from None
    if (now or time.time()) > expires_at:
        raise LinkError(410, "This setup link has expired. Please ask your 10KC contact for a new one.")
    return organization_id


def _page(status: int, message: str) -> HTMLResponse:
    body = (
        "<!doctype html><title>10KC setup link</title>"
        f"<h1>10KC directory setup</h1><p>{html.escape(message)}</p>"
    )
    return HTMLResponse(body, status_code=status)


def create_app(secret: str, fresh_portal_link: Callable[[str], str | None]) -> Starlette:
    """`fresh_portal_link(org_id)` returns a new WorkOS portal link, or None for an unknown organization."""

    async def setup(request: Request):
        try:
            organization_id = verify(secret, request.path_params["token"])
        except LinkError as exc:
            return _page(exc.status, exc.message)
        link = await run_in_threadpool(fresh_portal_link, organization_id)
        if link is None:
            return _page(404, "This setup link points to an organization that no longer exists.")
        return RedirectResponse(link, status_code=302, headers={"Cache-Control": "no-store"})

    async def health(request: Request):
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/setup/{token}", setup), Route("/health", health)])


def workos_portal_links(credentials) -> Callable[[str], str | None]:
    """A `fresh_portal_link` backed by the WorkOS API (intent dsync)."""
    from workos._errors import NotFoundError

    from tasks.workos import portal_link

    def fresh(organization_id: str) -> str | None:
        try:
            return portal_link(credentials, organization_id)
        except NotFoundError:
            return None

    return fresh
