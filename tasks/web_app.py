"""The project's one small web app (`hris-runbook setup-links`): pages reached by signed links, no login.

Each page module offers `routes(...) -> list[BaseRoute]`; `app_from_blocks` puts them in one app.
A token is base64url(payload) + "." + HMAC-SHA256(purpose + payload), keyed by a secret of at least
32 bytes; the purpose keeps a token made for one page from opening another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import time
from collections import deque
from collections.abc import Callable, Iterable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import BaseRoute, Route

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


def page(title: str, message: str, status: int = 200, body: str = "", headers=None) -> HTMLResponse:
    """A plain page: a heading, one sentence (escaped here; red for an error), trusted HTML below."""
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>10KC: {html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:38em;margin:3em auto;padding:0 1em;line-height:1.5}}
label{{display:block;margin-top:1em;font-weight:600}} input,button{{font-size:1em;margin-top:.3em}}
button{{margin-top:1.2em;padding:.4em 1.2em}} .error{{color:#a00;font-weight:600}}</style></head>
<body><h1>{html.escape(title)}</h1><p{' class="error"' if status >= 400 else ""}>{html.escape(message)}</p>
{body}</body></html>"""
    return HTMLResponse(
        document, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


class RateLimit:
    """At most `per_minute` uses of each key in any 60 seconds (kept in memory: one app process)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self._uses: dict[str, deque[float]] = {}

    def wait_seconds(self, key: str) -> int:
        """0 and count the use when allowed; otherwise how many seconds until the key may be used again."""
        now = self.clock()
        if len(self._uses) > 10_000:  # forget keys idle for a minute, so memory stays small
            self._uses = {k: v for k, v in self._uses.items() if v and now - v[-1] < 60}
        uses = self._uses.setdefault(key, deque())
        while uses and now - uses[0] >= 60:
            uses.popleft()
        if len(uses) >= self.per_minute:
            return max(1, int(60 - (now - uses[0])) + 1)
        uses.append(now)
        return 0


async def _health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def create_app(*route_lists: Iterable[BaseRoute]) -> Starlette:
    """One app serving `/health` and every page module's routes."""
    routes: list[BaseRoute] = [Route("/health", _health)]
    for route_list in route_lists:
        routes.extend(route_list)
    return Starlette(routes=routes)


def app_from_blocks(block_name: str = "default") -> Starlette:
    """The app `hris-runbook setup-links` serves, configured from the saved blocks.

    A page module joins the app with one more `module.routes(...)` line below.
    """
    from blocks import SlackWorkspace, WorkOSCredentials
    from blocks.web_app import load_checked, load_web_app
    from tasks import member_exports, setup_links, slack_actions, status_board

    web = load_web_app(block_name)
    workos = load_checked(WorkOSCredentials, block_name, required=False)
    return create_app(
        setup_links.routes_from_block(workos),
        member_exports.routes(web.signing_secret.get_secret_value()),
        status_board.routes(),
        slack_actions.routes_from_block(load_checked(SlackWorkspace, block_name, required=False)),
    )
