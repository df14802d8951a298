"""`/review-files/{token}`: the signed, expiring download page of review files too large to attach to
an email (tasks/review_links.py makes the link). GET only: a page listing the files, and each file at
`/review-files/{token}/{n}`, streamed from the files dir. Only the files the token names are served,
only regular files (never through a symlink), at most DOWNLOADS_PER_MINUTE requests a minute per link.
"""

from __future__ import annotations

import html
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import BaseRoute, Route

from tasks.files_dir import files_dir as default_files_dir
from tasks.review_links import DownloadLink, read_download_link
from tasks.tokens import LinkError
from webapp.pages import RateLimit, page

DOWNLOADS_PER_MINUTE = 30
TITLE = "Files to review"
GONE = "These files are no longer kept. Please ask your 10KC contact for a new link."

logger = logging.getLogger("hris_runbook.web.review_files")


def _size(size: int) -> str:
    return f"{size / 1024:,.0f} kB" if size < 1024 * 1024 else f"{size / (1024 * 1024):,.1f} MB"


def regular_file(root: Path, link: DownloadLink, index: int) -> tuple[Path, int]:
    """The file's path and size: a regular file below `<root>/<customer>/`, no symlink on the way;
    LinkError 410 otherwise (purged, replaced, or never there)."""
    path = link.path(root, index)
    try:
        for part in (root / link.customer_key, path.parent, path):
            if stat.S_ISLNK(os.lstat(part).st_mode):
                raise LinkError(410, GONE)
        info = os.lstat(path)
    except OSError:
        raise LinkError(410, GONE) from None
    if not stat.S_ISREG(info.st_mode):
        raise LinkError(410, GONE)
    return path, info.st_size


def _open_regular(path: Path) -> tuple[BinaryIO, int]:
    """The file opened without following a symlink (swapped in since it was looked at) and its size."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        raise LinkError(410, GONE) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise LinkError(410, GONE)
    return os.fdopen(fd, "rb"), info.st_size


async def _chunks(handle: BinaryIO, size: int = 1 << 16) -> AsyncIterator[bytes]:
    try:
        while chunk := await run_in_threadpool(handle.read, size):
            yield chunk
    finally:
        handle.close()


class TooOften(LinkError):
    """A link used more than its requests a minute: 429, and when it opens again (Retry-After)."""

    def __init__(self, wait: int):
        super().__init__(429, f"This link was used many times in the last minute. Try again in {wait} s.")
        self.wait = wait


def refused(exc: LinkError):
    """The one-line page of a link that cannot be used now; a 429 says when to come back."""
    headers = {"Retry-After": str(exc.wait)} if isinstance(exc, TooOften) else None
    return page(TITLE, exc.message, exc.status, headers=headers)


def routes(
    secret: str,
    files_dir: Callable[[], Path] = default_files_dir,
    per_minute: int = DOWNLOADS_PER_MINUTE,
    clock: Callable[[], float] = time.monotonic,
    previous: Sequence[str] = (),
) -> list[BaseRoute]:
    """GET `/review-files/{token}` (the list) and `/review-files/{token}/{n}` (one file); links signed
    with a `previous` key (before a rotation) open too, until they expire."""
    from blocks.web_app import check_secret

    check_secret(secret, "the web app's signing secret")
    limit = RateLimit(per_minute, clock)

    def opened(request: Request) -> DownloadLink:
        token = request.path_params["token"]
        link = read_download_link([secret, *previous], token)
        wait = limit.wait_seconds(token)
        if wait:
            raise TooOften(wait)
        return link

    async def listing(request: Request):
        try:
            link = opened(request)
            root = await run_in_threadpool(files_dir)
            files = [await run_in_threadpool(regular_file, root, link, i) for i in range(len(link.files))]
        except LinkError as exc:
            return refused(exc)
        expires = datetime.fromtimestamp(link.expires_at, UTC).strftime("%d %B %Y, %H:%M UTC")
        items = "".join(
            f'<li><a href="{html.escape(request.path_params["token"])}/{i}" download>'
            f"{html.escape(name)}</a> ({_size(size)})</li>"
            for i, (name, (_path, size)) in enumerate(zip(link.files, files, strict=True))
        )
        body = (  # each href is relative: /review-files/<token>/<n>
            f"<ul>{items}</ul><p>This link works until {html.escape(expires)}.</p>"
        )
        return page(TITLE, "The files your 10KC contact asked you to review:", body=body)

    async def download(request: Request):
        try:
            link = opened(request)
            index = int(request.path_params["index"])
            if not 0 <= index < len(link.files):
                raise LinkError(404, "There is no such file behind this link.")
            root = await run_in_threadpool(files_dir)
            path, _size_seen = await run_in_threadpool(regular_file, root, link, index)
            handle, size = await run_in_threadpool(_open_regular, path)
        except LinkError as exc:
            return refused(exc)
        logger.info("Review file %d of %s/%s sent (%d bytes)", index, link.customer_key, link.folder, size)
        name = link.files[index]
        return StreamingResponse(
            _chunks(handle),
            media_type="text/csv",
            headers={
                "Content-Length": str(size),
                "Content-Disposition": f"attachment; filename*=utf-8''{quote(name)}",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return [
        Route("/review-files/{token}", listing, methods=["GET"]),
        Route("/review-files/{token}/{index:int}", download, methods=["GET"]),
    ]
