"""/board: the status board (tasks/status_board.py) as one page, filterable by CSM. Internal: it lists
every customer, CSM and run, so it is served on the internal listener only.

Server-rendered HTML with inline SVG charts and one stylesheet in the page: no script, no build step.
"""

from __future__ import annotations

import asyncio
import html
import math
import time
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tasks.status_board import STATES, UPLOADS_SHOWN, Row, Upload, build_board

COLUMNS = ("customer", "CSM", "path", "step", "waiting on", "since", "run", "uploads", "mapping",
           "last upload", "next upload expected", "flags")  # fmt: skip
TIMES = ("since", "last upload", "next upload expected")
STATE_CSS = dict(zip(STATES, ("needs", "customer", "fine"), strict=True))
BARS = ("rows", "invites", "deletions")  # per upload, left to right
BAR_W, BAR_GAP, SLOT_GAP, CHART_H = 6, 1, 7, 40

STYLE = """
:root{--ink:#1f2933;--muted:#6b7785;--line:#e3e7ec;--bg:#f5f7fa;--needs:#d9480f;--needs-bg:#fff4e6;
--customer:#1c7ed6;--customer-bg:#e7f5ff;--fine:#2b8a3e;--fine-bg:#ebfbee;--rows:#adb5bd;--invites:#37b24d;
--deletions:#f03e3e}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);background:var(--bg);
margin:0;padding:1.5rem}
h1{font-size:1.5rem;margin:0 0 .2rem}
.sub{color:var(--muted);margin:0 0 1rem}
a{color:#1864ab}
#csm-counts{display:flex;flex-wrap:wrap;gap:.75rem;margin:0 0 1rem;padding:0;list-style:none}
.csm-card{display:block;min-width:15rem;background:#fff;border:1px solid var(--line);border-radius:10px;
padding:.6rem .8rem;text-decoration:none;color:inherit;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.csm-card.selected{border-color:#1c7ed6;box-shadow:0 0 0 2px #a5d8ff}
.csm-card .who{font-weight:600;margin-bottom:.35rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.csm-card .nums{display:flex;gap:.9rem}
.count{display:flex;flex-direction:column;line-height:1.1}
.count b{font-size:1.35rem}
.count small{color:var(--muted);font-size:.72rem;white-space:nowrap}
.count.needs b{color:var(--needs)}.count.customer b{color:var(--customer)}.count.fine b{color:var(--fine)}
.split{display:flex;height:5px;border-radius:3px;overflow:hidden;margin-top:.45rem;background:var(--line)}
.split span.needs{background:var(--needs)}.split span.customer{background:var(--customer)}
.split span.fine{background:var(--fine)}
.toolbar{display:flex;align-items:center;gap:1.5rem;margin:0 0 .75rem;flex-wrap:wrap}
.toolbar select{font:inherit;padding:.2rem .4rem}
.legend{display:flex;gap:.9rem;color:var(--muted);font-size:.8rem;align-items:center}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:.3rem;
vertical-align:-1px}
.legend i.rows{background:var(--rows)}.legend i.invites{background:var(--invites)}
.legend i.deletions{background:var(--deletions)}
.legend i.due{border:1.5px dashed var(--needs);background:var(--needs-bg)}
table{border-collapse:separate;border-spacing:0;width:100%;background:#fff;border:1px solid var(--line);
border-radius:10px;overflow:hidden}
th{font-size:.72rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);text-align:left;
font-weight:600;background:#fafbfc;padding:.5rem .6rem;border-bottom:1px solid var(--line);white-space:nowrap}
td{padding:.55rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
tbody tr:last-child td{border-bottom:0}
tbody tr td:first-child{border-left:4px solid transparent}
tbody tr.needs-person td:first-child{border-left-color:var(--needs)}
tbody tr.customer td:first-child{border-left-color:var(--customer)}
tbody tr.needs-person{background:#fffaf5}
td.customer{font-weight:600}
td.CSM,td.path{color:var(--muted);font-size:.85rem;white-space:nowrap}
td.run{white-space:nowrap}
td.step{min-width:9rem;max-width:14rem}
td.since,td.last-upload,td.next-upload-expected{white-space:nowrap;font-size:.85rem}
td small,.muted{color:var(--muted)}
.pill{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.8rem;font-weight:600;
white-space:nowrap}
.pill.needs{background:var(--needs-bg);color:var(--needs)}
.pill.customer{background:var(--customer-bg);color:var(--customer)}
.pill.fine{background:var(--fine-bg);color:var(--fine)}
td.flags{color:var(--needs);font-size:.85rem;min-width:10rem;max-width:16rem}
td.uploads{min-width:10rem}
.overdue-marker,td.uploads svg{white-space:nowrap}
svg.chart{display:block}
svg.chart .rows{fill:var(--rows)}svg.chart .invites{fill:var(--invites)}
svg.chart .deletions{fill:var(--deletions)}
svg.chart .base{stroke:var(--line)}
svg.chart .due{fill:var(--needs-bg);stroke:var(--needs);stroke-dasharray:3 2}
svg.chart text{font:bold 11px system-ui,sans-serif;fill:var(--needs)}
.overdue-marker{display:inline-block;margin-bottom:.2rem;padding:0 .45rem;border-radius:4px;
background:var(--needs);color:#fff;font-size:.75rem;font-weight:700}
td.mapping{font-size:.85rem;min-width:11rem;max-width:14rem}
.chart-note{display:block;margin-top:.2rem;font-size:.75rem;color:var(--muted);max-width:11rem}
td.mapping code{font-size:.8rem;word-break:break-all}
.warn{color:var(--needs)}.ok{color:var(--fine)}
"""


def render_page(
    rows: list[Row],
    csms: list[str],
    selected: str | None,
    everyone: list[Row] | None = None,
    now: datetime | None = None,
) -> str:
    """The board as one HTML page: counts per CSM, a CSM filter and a table with a chart of each
    customer's last uploads, escaped throughout. `everyone`: the rows the counts are made of."""
    now = now or datetime.now(UTC)
    everyone = rows if everyone is None else everyone
    options = "".join(
        f'<option value="{_e(c)}"{" selected" if c == selected else ""}>{_e(c)}</option>' for c in csms
    )
    head = "".join(f"<th>{_e(c)}</th>" for c in COLUMNS)
    body = "".join(_table_row(row, now) for row in rows)
    shown = f"{len(rows)} customer(s)" + (f" of {_e(selected)}" if selected else "")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Runbook status board</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>Runbook status board</h1>"
        f"<p class='sub'>{shown}; what needs a person comes first. Read from Prefect at "
        f"{now.astimezone(UTC):%H:%M} UTC.</p>"
        f"{_csm_counts(everyone, selected)}"
        '<div class="toolbar"><form method="get" action="/board"><label>CSM <select name="csm" '
        f'onchange="this.form.submit()"><option value="">everyone</option>{options}</select></label> '
        "<noscript><button>Filter</button></noscript></form>"
        f'<div class="legend">Last {UPLOADS_SHOWN} uploads: <span><i class="rows"></i>rows</span>'
        '<span><i class="invites"></i>invites</span><span><i class="deletions"></i>deletions</span>'
        '<span><i class="due"></i>upload overdue</span>'
        '<span class="muted">(log scale; hover a chart for the counts)</span></div></div>'
        f'<table id="board"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>'
    )


def _csm_counts(rows: list[Row], selected: str | None) -> str:
    """One card per CSM (and one for everyone): how many customers need a person, wait on the
    customer, or are fine; a card is the link that filters the board to that CSM."""
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        for who in ("", row.csm):
            counts.setdefault(who, dict.fromkeys(STATES, 0))[row.state] += 1
    cards = []
    for who in sorted(counts, key=lambda c: (c != "", c.lower())):
        numbers = counts[who]
        total = sum(numbers.values()) or 1
        nums = "".join(
            f'<span class="count {STATE_CSS[s]}" data-state="{STATE_CSS[s]}"><b>{numbers[s]}</b>'
            f"<small>{_e(s)}</small></span>"
            for s in STATES
        )
        split = "".join(
            f'<span class="{STATE_CSS[s]}" style="width:{100 * numbers[s] / total:.1f}%"></span>'
            for s in STATES
        )
        chosen = who.lower() == (selected or "").lower()
        href = f"/board?csm={quote(who)}" if who else "/board"
        cards.append(
            f'<li><a class="csm-card{" selected" if chosen else ""}" data-csm="{_e(who)}" href="{_e(href)}">'
            f'<div class="who">{_e(who or "Everyone")}</div><div class="nums">{nums}</div>'
            f'<div class="split">{split}</div></a></li>'
        )
    return f'<ul id="csm-counts">{"".join(cards)}</ul>'


def _table_row(row: Row, now: datetime) -> str:
    cells = row.as_table_row()
    values = {
        "run": f'<a href="{_e(row.run_url)}">open run</a>' if row.run_url else "",
        "CSM": f'<span title="{_e(row.csm)}">{_e(row.csm.split("@")[0])}</span>',
        "waiting on": f'<span class="pill {STATE_CSS[row.state]}">{_e(row.waiting_on)}</span>',
        "since": _time(row.since, now),
        "last upload": _time(row.last_upload, now),
        "next upload expected": _time(row.next_upload, now),
        "uploads": _uploads_cell(row, now),
        "mapping": _mapping_cell(row, now),
    }
    tds = "".join(
        f'<td class="{c.replace(" ", "-")}">{values[c] if c in values else _e(cells[c])}</td>'
        for c in COLUMNS
    )
    css = ("needs-person" if row.needs_a_person else row.waiting_on) + (" overdue" if row.overdue else "")
    return f'<tr class="{_e(css)}" data-customer="{_e(row.customer_key)}">{tds}</tr>'


def _uploads_cell(row: Row, now: datetime) -> str:
    """The overdue marker (if the next upload is late), then the chart; a dash for API customers."""
    marker = ""
    if row.overdue and row.next_upload:
        marker = f'<span class="overdue-marker">upload {_span(row.next_upload, now)} overdue</span><br>'
    if not row.uploads and not row.overdue:
        return (
            '<span class="muted">no uploads yet</span>'
            if row.path == "SFTP"
            else '<span class="muted">–</span>'
        )
    note = ""
    if row.uploads:
        last = row.uploads[-1]
        rows = "?" if last.rows is None else f"{last.rows:,}"
        note = (
            f'<small class="chart-note">last: {rows} rows, {_count(last.invites, "invite")}, '
            f"{_count(last.deletions, 'deletion')}</small>"
        )
    return marker + _chart(row.uploads, row.overdue) + note


def _chart(uploads: list[Upload], overdue: bool) -> str:
    """Inline SVG: per upload three bars (rows, invites, deletions) on one logarithmic scale, so that 16
    deletions still show beside 1,200 rows (the exact counts are in each upload's tooltip); a dashed slot
    at the end when the next upload is overdue. A zero is a 1-pixel stub: every upload shows three bars."""
    slot = len(BARS) * BAR_W + (len(BARS) - 1) * BAR_GAP
    top = math.log1p(max([1] + [_value(u, bar) or 0 for u in uploads for bar in BARS]))
    groups = []
    for i, upload in enumerate(uploads):
        x0 = i * (slot + SLOT_GAP)
        bars = []
        for j, bar in enumerate(BARS):
            value = _value(upload, bar) or 0
            h = max(1, round(CHART_H * math.log1p(value) / top))
            bars.append(
                f'<rect class="bar {bar}" x="{x0 + j * (BAR_W + BAR_GAP)}" y="{CHART_H - h}" '
                f'width="{BAR_W}" height="{h}" rx="1"/>'
            )
        rows = "?" if upload.rows is None else f"{upload.rows:,}"
        title = (
            f"{upload.name} ({upload.at.astimezone(UTC):%Y-%m-%d}): {rows} rows, {upload.invites:,} invites, "
            f"{upload.updates:,} updates, {upload.deletions:,} deletions"
        )
        groups.append(f'<g class="upload"><title>{_e(title)}</title>{"".join(bars)}</g>')
    width = max(1, len(uploads)) * (slot + SLOT_GAP)
    if overdue:
        x0 = len(uploads) * (slot + SLOT_GAP)
        groups.append(
            f'<g class="due-slot"><title>upload overdue</title><rect class="due" x="{x0 + 0.5}" y="0.5" '
            f'width="{slot - 1}" height="{CHART_H - 1}" rx="2"/>'
            f'<text x="{x0 + slot / 2}" y="{CHART_H / 2 + 4}" text-anchor="middle">!</text></g>'
        )
        width = x0 + slot + SLOT_GAP
    axis = f'<line class="base" x1="0" y1="{CHART_H + 0.5}" x2="{width}" y2="{CHART_H + 0.5}"/>'
    label = f"{len(uploads)} upload(s)" + (", next one overdue" if overdue else "")
    return (
        f'<svg class="chart" role="img" aria-label="{label}" width="{width}" height="{CHART_H + 1}" '
        f'viewBox="0 0 {width} {CHART_H + 1}">{axis}{"".join(groups)}</svg>'
    )


def _value(upload: Upload, bar: str) -> int | None:
    return {"rows": upload.rows, "invites": upload.invites, "deletions": upload.deletions}[bar]


def _mapping_cell(row: Row, now: datetime) -> str:
    """The customer's mapping table: its link, when it was last set, whether the last upload's
    columns and values all matched it, and its next review."""
    if not row.mapping_link:
        return '<span class="muted">–</span>'
    link = row.mapping_link
    shown = (
        f'<a href="{_e(link)}">mapping sheet</a>'
        if link.startswith(("https://", "http://"))
        else f"<code>{_e(link)}</code>"
    )
    updated = (
        f"updated {_e(f'{row.mapping_updated.astimezone(UTC):%Y-%m-%d}')} ({_ago(row.mapping_updated, now)})"
        if row.mapping_updated
        else "last update not recorded"
    )
    state = ""
    if row.uploads:
        last = row.uploads[-1]
        problems = [
            f"{n} {what}{'s' if n != 1 else ''}"
            for n, what in (
                (last.missing_columns, "missing column"),
                (last.unmapped_values, "unmapped value"),
            )
            if n
        ]
        state = (
            f'<br><span class="warn">last upload: {_e(", ".join(problems))}</span>'
            if problems
            else '<br><span class="ok">last upload matched it</span>'
        )
    return f'{shown}<br><small class="mapping-updated">{updated}</small>{state}{_review(row, now)}'


def _review(row: Row, now: datetime) -> str:
    """The next mapping review (mapping-review deployment), in red once overdue."""
    if row.next_mapping_review is None:
        return ""
    when = f"{row.next_mapping_review.astimezone(UTC):%Y-%m-%d}"
    if "mapping review overdue" in row.flags:
        return f'<br><span class="warn mapping-review">review overdue since {_e(when)}</span>'
    ago = _ago(row.next_mapping_review, now)
    return f'<br><small class="mapping-review">next review {_e(when)} ({ago})</small>'


def _time(value: datetime | None, now: datetime) -> str:
    if value is None:
        return ""
    full = f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return f'<time datetime="{value.isoformat()}" title="{full}">{value.astimezone(UTC):%Y-%m-%d}</time>' + (
        f"<br><small>{_ago(value, now)}</small>"
    )


def _ago(value: datetime, now: datetime) -> str:
    """'3 days ago' / 'in 2 h': how far a time is from now."""
    if abs((now - value).total_seconds()) < 60:
        return "just now"
    return f"{_span(value, now)} ago" if now >= value else f"in {_span(value, now)}"


def _span(value: datetime, now: datetime) -> str:
    """'3 days', '2 h', '5 min': the time between two moments in its largest whole unit."""
    span = abs((now - value).total_seconds())
    if span >= 86400:
        days = int(span // 86400)
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{int(span // 3600)} h" if span >= 3600 else f"{int(span // 60)} min"


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


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
        return HTMLResponse(
            render_page(shown, csms, selected, everyone=rows), headers={"Cache-Control": "no-store"}
        )


def routes(fresh_seconds: float = 30) -> list[Route]:
    return [Route("/board", BoardPage(fresh_seconds).show)]
