"""`/setup/{token}`: checks a long-lived setup link (tasks/setup_links.py) and redirects to a freshly
generated WorkOS portal link. Each click calls WorkOS, so a link is limited to CLICKS_PER_MINUTE
redirects a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Route

from blocks.web_app import check_secret
from tasks.setup_links import verify, workos_portal_links
from tasks.tokens import LinkError
from webapp.pages import RateLimit, page

CLICKS_PER_MINUTE = 10
TITLE = "10KC directory setup"


def routes(
    secret: str,
    fresh_portal_link: Callable[[str], str | None],
    clicks_per_minute: int = CLICKS_PER_MINUTE,
    clock: Callable[[], float] = time.monotonic,
    previous: Sequence[str] = (),
) -> list[BaseRoute]:
    """`/setup/{token}`; `fresh_portal_link(org_id)` returns a new WorkOS portal link, or None if unknown.
    Links signed with a `previous` key (before a rotation) open too, until they expire."""
    check_secret(secret, "the setup links secret")
    keys = [secret, *previous]
    limit = RateLimit(clicks_per_minute, clock)

    async def setup(request: Request):
        token = request.path_params["token"]
        try:
            organization_id = verify(keys, token)
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


def routes_from_block(credentials) -> list[BaseRoute]:
    """The setup-link routes for a WorkOS block that serves links; none without WorkOS or links."""
    if credentials is None or not credentials.setup_links_url or credentials.setup_links_secret is None:
        return []
    return routes(
        credentials.setup_links_secret.get_secret_value(),
        workos_portal_links(credentials),
        previous=[s.get_secret_value() for s in credentials.setup_links_previous_secrets],
    )
