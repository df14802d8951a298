"""/board: the status board (tasks/status_board.py) as one page, filterable by CSM. Internal: it lists
every customer, CSM and run, so it is served on the internal listener only.
"""

from __future__ import annotations

import asyncio
import html
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tasks.status_board import Row, build_board

COLUMNS = ("customer", "CSM", "path", "step", "waiting on", "since", "run", "last upload",
           "next upload expected", "flags")  # fmt: skip


def render_page(rows: list[Row], csms: list[str], selected: str | None) -> str:
    """The board as one HTML page: a CSM filter and a table, escaped throughout."""
    options = "".join(
        f'<option value="{html.escape(c)}"{" selected" if c == selected else ""}>{html.escape(c)}</option>'
        for c in csms
    )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for row in rows:
        cells = row.as_table_row()
        link = f'<a href="{html.escape(row.run_url)}">open</a>' if row.run_url else ""
        tds = "".join(
            f'<td class="{c.replace(" ", "-")}">{link if c == "run" else html.escape(cells[c])}</td>'
            for c in COLUMNS
        )
        css = "needs-person" if row.needs_a_person else row.waiting_on
        body.append(f'<tr class="{css}" data-customer="{html.escape(row.customer_key)}">{tds}</tr>')
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Runbook status board</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}"
        "tr.needs-person td{background:#fff4e5}</style></head><body>"
        f"<h1>Runbook status board</h1><p>{len(rows)} customer(s); what needs a person comes first.</p>"
        '<form method="get" action="/board"><label>CSM <select name="csm" onchange="this.form.submit()">'
        f'<option value="">everyone</option>{options}</select></label> <noscript><button>Filter</button>'
        f'</noscript></form><table id="board"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
        "</tbody></table></body></html>"
    )


class BoardPage:
    """/board: the board read from Prefect, reused for `fresh_seconds` so that switching the CSM filter
    or several people opening it at once cost one read of the API, not one each."""

    def __init__(self, fresh_seconds: float = 30):
        self.fresh_seconds = fresh_seconds
        self._built: tuple[float, list[Row]] | None = None
        self._lock = asyncio.Lock()

    async def rows(self) -> list[Row]:
        async with self._lock:
            if self._built is None or time.monotonic() - self._built[0] > self.fresh_seconds:
                self._built = (time.monotonic(), await run_in_threadpool(build_board))
            return self._built[1]

    async def show(self, request: Request) -> HTMLResponse:
        selected = request.query_params.get("csm") or None
        rows = await self.rows()
        csms = sorted({row.csm for row in rows if row.csm})
        shown = [row for row in rows if selected is None or row.csm.lower() == selected.lower()]
        return HTMLResponse(render_page(shown, csms, selected), headers={"Cache-Control": "no-store"})


def routes(fresh_seconds: float = 30) -> list[Route]:
    return [Route("/board", BoardPage(fresh_seconds).show)]
