"""Bounds on what one request to the public app may cost: its body's size and how long it may take to
arrive. A body over the limit gets 413 (at once when Content-Length says so, else as soon as the
limit is crossed); a body that trickles in past the deadline gets 408. Nothing is buffered here.
"""

from __future__ import annotations

import asyncio
import time

from starlette.responses import PlainTextResponse

MAX_BODY_BYTES = 1024 * 1024  # Slack's interactivity payloads are a few kB
BODY_TIMEOUT_SECONDS = 30.0


class BodyRefused(Exception):
    """The request body broke a bound: the status and the one line sent back."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def too_large(max_bytes: int) -> BodyRefused:
    return BodyRefused(413, f"refused: the request body is larger than {max_bytes:,} bytes")


class BoundedRequests:
    """ASGI middleware: every request's body at most `max_bytes`, in full within `timeout` seconds.

    `larger` gives path prefixes their own (max_bytes, timeout): the member-export upload takes a
    hub's whole export and checks its size itself while streaming.
    """

    def __init__(
        self,
        app,
        max_bytes: int = MAX_BODY_BYTES,
        timeout: float = BODY_TIMEOUT_SECONDS,
        larger: dict[str, tuple[int, float]] | None = None,
    ):
        self.app, self.max_bytes, self.timeout, self.larger = app, max_bytes, timeout, larger or {}

    def bounds(self, path: str) -> tuple[int, float]:
        for prefix, bounds in self.larger.items():
            if path.startswith(prefix):
                return bounds
        return self.max_bytes, self.timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, timeout = self.bounds(scope["path"])
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > max_bytes:
            await _refuse(too_large(max_bytes), scope, receive, send)
            return
        deadline, received, started = time.monotonic() + timeout, 0, False

        async def bounded_receive():
            nonlocal received
            remaining = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.001))
            except TimeoutError:
                raise BodyRefused(408, f"refused: the request body took longer than {timeout:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise too_large(max_bytes)
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, watched_send)
        except BodyRefused as refusal:
            if started:
                raise
            await _refuse(refusal, scope, receive, send)


async def _refuse(refusal: BodyRefused, scope, receive, send) -> None:
    """The one-line answer; the connection is closed, so the rest of the body is never read."""
    response = PlainTextResponse(
        refusal.message + "\n", status_code=refusal.status, headers={"Connection": "close"}
    )
    await response(scope, receive, send)
