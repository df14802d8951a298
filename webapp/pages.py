"""What every page of the web app shares: the plain page layout and a per-key rate limit."""

from __future__ import annotations

import html
import time
from collections import deque
from collections.abc import Callable

from starlette.responses import HTMLResponse


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
