"""Long-lived WorkOS setup links: WorkOS portal links expire five minutes after issue, so emails carry
a signed link to our own endpoint, which checks it and redirects to a freshly generated portal link.

Token: base64url("<organization id>.<expiry unix time>") + "." + HMAC-SHA256 of that, keyed by the
WorkOS block's `setup_links_secret` (at least 32 bytes). Each click calls WorkOS, so a link is
limited to CLICKS_PER_MINUTE redirects a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Route

from tasks.web_app import LinkError, RateLimit, check_secret, page, seal, unseal
from tasks.web_app import create_app as create_web_app

CLICKS_PER_MINUTE = 10
INVALID = "This setup link is not valid. Please ask your 10KC contact for a new one."
TITLE = "10KC directory setup"


def sign(secret: str, organization_id: str, expires_at: int) -> str:
    return seal(secret, f"{organization_id}.{expires_at}")


def make_setup_link(
    base_url: str, secret: str, organization_id: str, days: int, now: float | None = None
) -> str:
    """The link to email: valid for `days`, for this organization only."""
    expires_at = int((now or time.time()) + days * 86400)
    return f"{base_url.rstrip('/')}/setup/{sign(secret, organization_id, expires_at)}"


def verify(secret: str, token: str, now: float | None = None) -> str:
    """The organization id in a valid, unexpired token; LinkError (403/410) otherwise."""
    organization_id, _, expires = unseal(secret, token, INVALID).rpartition(".")
    if not organization_id or not expires.isdigit():
        raise LinkError(403, INVALID)
    if (now or time.time()) > int(expires):
        raise LinkError(410, "This setup link has expired. Please ask your 10KC contact for a new one.")
    return organization_id


def routes(
    secret: str,
    fresh_portal_link: Callable[[str], str | None],
    clicks_per_minute: int = CLICKS_PER_MINUTE,
    clock: Callable[[], float] = time.monotonic,
) -> list[BaseRoute]:
    """`/setup/{token}`; `fresh_portal_link(org_id)` returns a new WorkOS portal link, or None if unknown."""
    check_secret(secret, "the setup links secret")
    limit = RateLimit(clicks_per_minute, clock)

    async def setup(request: Request):
        token = request.path_params["token"]
        try:
            organization_id = verify(secret, token)
        except LinkError as exc:
            return page(TITLE, exc.message, exc.status)
        wait = limit.wait_seconds(token)
        if wait:
            return page(
                TITLE,
                "This link was opened many times in the last minute. Please try again in a minute.",
                429,
                headers={"Retry-After": str(wait)},
            )
        link = await run_in_threadpool(fresh_portal_link, organization_id)
        if link is None:
            return page(TITLE, "This setup link points to an organization that no longer exists.", 404)
        return RedirectResponse(link, status_code=302, headers={"Cache-Control": "no-store"})

    return [Route("/setup/{token}", setup)]


def create_app(secret: str, fresh_portal_link: Callable[[str], str | None], **limits) -> Starlette:
    """An app serving setup links only (tests; `tasks.web_app.app_from_blocks` serves every page)."""
    return create_web_app(routes(secret, fresh_portal_link, **limits))


def routes_from_block(credentials) -> list[BaseRoute]:
    """The setup-link routes for a WorkOS block that serves links; none without WorkOS or links."""
    if credentials is None or not credentials.setup_links_url or credentials.setup_links_secret is None:
        return []
    return routes(credentials.setup_links_secret.get_secret_value(), workos_portal_links(credentials))


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
