"""The project's one small web app (`hris-runbook setup-links`), on two listeners:

- public (`app_from_blocks`): pages reached by signed links (setup links, member exports, review-file
  downloads) and Slack's
  interactivity endpoint; meant to be reachable from the internet;
- internal (`internal_app_from_blocks`): pages for 10KC staff only (the status board), bound to
  127.0.0.1 by default, optionally behind HTTP basic auth (the Web App block's `internal_password`).

Each route module offers `routes(...) -> list[BaseRoute]`; the functions below put them in an app.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from webapp.limits import BODY_TIMEOUT_SECONDS, MAX_BODY_BYTES, BoundedRequests

UPLOAD_TIMEOUT_SECONDS = 30 * 60  # a 300 MB member export over a slow office line


async def _health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def create_app(*route_lists: Iterable[BaseRoute]) -> Starlette:
    """One app serving `/health` and every route module's routes."""
    routes: list[BaseRoute] = [Route("/health", _health)]
    for route_list in route_lists:
        routes.extend(route_list)
    return Starlette(routes=routes)


def create_public_app(
    *route_lists: Iterable[BaseRoute],
    max_bytes: int = MAX_BODY_BYTES,
    timeout: float = BODY_TIMEOUT_SECONDS,
    upload_timeout: float = UPLOAD_TIMEOUT_SECONDS,
) -> Starlette:
    """`create_app` with every request body bounded (webapp/limits.py): `max_bytes` in `timeout` seconds,
    except the member-export upload, which checks its own (larger) size and gets `upload_timeout`."""
    from webapp.member_exports import MAX_EXPORT_BYTES

    app = create_app(*route_lists)
    larger = {"/member-export/": (MAX_EXPORT_BYTES + 64 * 1024, upload_timeout)}
    app.add_middleware(BoundedRequests, max_bytes=max_bytes, timeout=timeout, larger=larger)
    return app


def app_from_blocks(block_name: str = "default") -> Starlette:
    """The public app `hris-runbook setup-links` serves, configured from the saved blocks.

    A public route module joins the app with one more `module.routes(...)` line below.
    """
    from blocks import SlackWorkspace, WorkOSCredentials
    from blocks.web_app import load_checked, load_web_app
    from webapp import member_exports, review_files, setup_links, slack_actions

    web = load_web_app(block_name)
    workos = load_checked(WorkOSCredentials, block_name, required=False)
    previous = [s.get_secret_value() for s in web.previous_secrets]  # links signed before a rotation
    return create_public_app(
        setup_links.routes_from_block(workos),
        member_exports.routes(web.signing_secret.get_secret_value(), previous=previous),
        review_files.routes(web.signing_secret.get_secret_value(), previous=previous),
        slack_actions.routes_from_block(load_checked(SlackWorkspace, block_name, required=False)),
    )


def internal_app_from_blocks(block_name: str = "default") -> Starlette:
    """The internal app: the status board, behind basic auth when the Web App block sets a password."""
    from blocks.web_app import load_web_app
    from webapp import board

    web = load_web_app(block_name)
    app = create_app(board.routes())
    if web.internal_password is not None:
        app.add_middleware(
            BasicAuth, user=web.internal_user, password=web.internal_password.get_secret_value()
        )
    return app


class BasicAuth:
    """HTTP basic auth for every request but /health (ASGI middleware)."""

    def __init__(self, app, user: str, password: str):
        self.app = app
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] != "/health":
            given = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not hmac.compare_digest(given.encode(), self.expected.encode()):
                refusal = Response(
                    "Sign in with the runbook's internal user and password.\n",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Basic realm="hris-runbook internal"'},
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def listeners(
    block_name: str, host: str, port: int, internal_host: str = "127.0.0.1", internal_port: int = 8031
) -> list:
    """The two uvicorn servers `hris-runbook setup-links` runs: the public app and the internal one."""
    import uvicorn

    public, internal = app_from_blocks(block_name), internal_app_from_blocks(block_name)
    return [
        uvicorn.Server(uvicorn.Config(public, host=host, port=port, log_level="warning")),
        uvicorn.Server(uvicorn.Config(internal, host=internal_host, port=internal_port, log_level="warning")),
    ]


def serve(servers: list) -> None:
    """Run the servers until interrupted (or until each has `should_exit`)."""
    import asyncio

    async def both():
        await asyncio.gather(*(server.serve() for server in servers))

    asyncio.run(both())
