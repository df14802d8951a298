"""The project's one small web app (`hris-runbook setup-links`): pages reached by signed links, no login.

Each route module offers `routes(...) -> list[BaseRoute]`; `app_from_blocks` puts them in one app.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route


async def _health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def create_app(*route_lists: Iterable[BaseRoute]) -> Starlette:
    """One app serving `/health` and every route module's routes."""
    routes: list[BaseRoute] = [Route("/health", _health)]
    for route_list in route_lists:
        routes.extend(route_list)
    return Starlette(routes=routes)


def app_from_blocks(block_name: str = "default") -> Starlette:
    """The app `hris-runbook setup-links` serves, configured from the saved blocks.

    A route module joins the app with one more `module.routes(...)` line below.
    """
    from blocks import SlackWorkspace, WorkOSCredentials
    from blocks.web_app import load_checked, load_web_app
    from webapp import board, member_exports, setup_links, slack_actions

    web = load_web_app(block_name)
    workos = load_checked(WorkOSCredentials, block_name, required=False)
    return create_app(
        setup_links.routes_from_block(workos),
        member_exports.routes(web.signing_secret.get_secret_value()),
        board.routes(),
        slack_actions.routes_from_block(load_checked(SlackWorkspace, block_name, required=False)),
    )
