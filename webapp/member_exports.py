"""`/member-export/{token}`: the signed, single-use page where a CSM hands over the hub's current member
export (no hub API).

The flow makes a link (tasks/export_links.py `member_export_link`) and waits with
`ask(MemberExportReceived, ...)`; the page checks the file as the file engine reads it, stores it at
`<files dir>/<customer key>/<upload id>/members.csv` and resumes the run with the path and a count.
Nothing is stored on a bad file; the link then still works. Member data never reaches the logs.
"""

from __future__ import annotations

import codecs
import html
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from uuid import UUID

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from tasks.export_links import ExportLink, MemberExportReceived, read_link
from tasks.files_dir import files_dir as default_files_dir
from tasks.tokens import LinkError
from webapp.pages import page

MAX_EXPORT_BYTES = 300 * 1024 * 1024  # a hub of a million members exports to about 150 MB
EXPORT_NAME = "members.csv"
USED = "This upload link was already used: the member export was received. Each link works once."
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

logger = logging.getLogger("hris_runbook.web.member_exports")


class ExportRefused(ValueError):
    """The uploaded file cannot be used; the message is one line for the page."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status, self.uploaded_by = status, ""


def receive_export(source: BinaryIO, root: Path, file_name: str, max_bytes: int) -> tuple[Path, int]:
    """Copy an uploaded export next to where it will be kept and check it as the file engine reads it.

    Returns the temporary copy (UTF-16 exports re-encoded as UTF-8) and its member count; on any
    problem the copy is removed and ExportRefused says what is wrong in one line.
    """
    from tasks.tabular import InputError, read_csv

    shown = Path(file_name or "the file").name[:100]
    incoming = root / ".incoming"  # same file system as the destination; purge-old-files sweeps leftovers
    incoming.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=incoming, prefix="member-export-", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            _copy(source, out, max_bytes, shown)
        try:
            table = read_csv("member export", temp, wanted=["email"])
        except InputError as exc:
            raise ExportRefused(f"{shown}: {exc.problem}") from None
        if table.column(["email"]) is None:
            raise ExportRefused(
                f"{shown}: no Email column; upload the file from Members > Export in the hub, unchanged"
            )
        return temp, table.table.num_rows
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _copy(source: BinaryIO, out: BinaryIO, max_bytes: int, shown: str) -> None:
    """Copy in chunks, refusing more than `max_bytes`; a UTF-16 file (Excel "Unicode Text") becomes UTF-8."""
    first = source.read(1 << 20)
    decoder = None
    if first.startswith(UTF16_BOMS):
        decoder = codecs.getincrementaldecoder("utf-16")(errors="strict")
    total, chunk = 0, first
    while chunk:
        total += len(chunk)
        if total > max_bytes:
            raise ExportRefused(f"{shown}: the file is larger than {_mb(max_bytes)}", 413)
        if decoder is None:
            out.write(chunk)
        else:
            try:
                out.write(decoder.decode(chunk).encode())
            except UnicodeDecodeError:
                raise ExportRefused(f"{shown}: the file is not valid UTF-16 text") from None
        chunk = source.read(1 << 20)
    if decoder is not None:
        try:
            out.write(decoder.decode(b"", final=True).encode())
        except UnicodeDecodeError:
            raise ExportRefused(f"{shown}: the file is not valid UTF-16 text") from None


def waiting_problem(flow_run_id: str) -> tuple[int, str] | None:
    """None when the run waits for a member export; else the status and sentence for the page."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.input.actions import read_flow_run_input

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(flow_run_id))
        state = run.state
        if state is not None and state.is_paused():
            keyset = state.state_details.run_input_keyset or {}
            schema = read_flow_run_input(keyset["schema"], flow_run_id=run.id) if keyset else None
            if isinstance(schema, dict) and "export_path" in schema.get("properties", {}):
                return None
    except ObjectNotFound:
        return 410, "The runbook no longer has this request. Please ask your 10KC contact."
    except Exception as exc:  # the Prefect API is down or unreachable
        logger.warning("Cannot read flow run %s: %s", flow_run_id, type(exc).__name__)
        return 503, "The runbook cannot be reached just now. Please try again in a few minutes."
    if state is not None and state.is_final():
        return 409, (
            f"The runbook no longer waits for this member export (the run is {state.name.lower()}). "
            "Nothing was uploaded."
        )
    return 409, "The runbook is not waiting for the member export yet. Please try again in a minute."


def _resume(link: ExportLink, answer: MemberExportReceived) -> tuple[int, str] | None:
    """Resume the waiting run with the answer; None when it continues, else why it did not."""
    from prefect.exceptions import NotPausedError
    from prefect.flow_runs import resume_flow_run

    try:
        resume_flow_run(UUID(link.flow_run_id), run_input=answer.model_dump())
        return None
    except (NotPausedError, RuntimeError):
        return waiting_problem(link.flow_run_id) or (409, "The runbook could not take the export.")
    except Exception as exc:  # no answer from the API: did the resume land?
        logger.warning("Resuming flow run %s: %s", link.flow_run_id, type(exc).__name__)
        return waiting_problem(link.flow_run_id)  # still waiting: it did not


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


async def _limited(stream: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    """The request body, stopped once it is bigger than a file of `max_bytes` and the form around it."""
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > max_bytes + 64 * 1024:
            raise ExportRefused(f"the file is larger than {_mb(max_bytes)}", 413)
        yield chunk


def _title(link: ExportLink) -> str:
    return f"Member export for {link.company_name}" if link.company_name else "Member export"


def _form_page(link: ExportLink, error: str | None = None, status: int = 200, uploaded_by: str = ""):
    """The upload form, with what went wrong with the last try (the name typed is kept)."""
    expires = datetime.fromtimestamp(link.expires_at, UTC).strftime("%d %B %Y, %H:%M UTC")
    form = f"""
<ol><li>In the 10KC hub, open <b>Members &gt; Export</b> and download the export (a CSV file).</li>
<li>Choose that file here, unchanged, enter your name and press <b>Upload</b>.</li></ol>
<form method="post" enctype="multipart/form-data">
<label for="export">Member export (CSV)</label>
<input id="export" name="export" type="file" accept=".csv,.txt,text/csv" required>
<label for="uploaded_by">Your name</label>
<input id="uploaded_by" name="uploaded_by" type="text" maxlength="100" autocomplete="name" required
 value="{html.escape(uploaded_by)}">
<br><button type="submit">Upload</button></form>
<p>This link works once and expires on {html.escape(expires)}.</p>"""
    message = error or (
        "The runbook needs the hub's current member list to prepare this upload's invites, "
        "updates and deletions."
    )
    return page(_title(link), message, status, body=form)


def routes(
    secret: str,
    files_dir: Callable[[], Path] = default_files_dir,
    max_bytes: int = MAX_EXPORT_BYTES,
    previous: Sequence[str] = (),
) -> list[BaseRoute]:
    """GET shows the upload form; POST checks and stores the export and resumes the run. Links signed
    with a `previous` key (before a rotation) open too, until they expire."""
    from blocks.web_app import check_secret

    check_secret(secret, "the web app's signing secret")
    keys = [secret, *previous]

    async def opened(request: Request) -> tuple[ExportLink, Path]:
        """The link and the files dir, or LinkError for an invalid, expired, used or stale link."""
        link = read_link(keys, request.path_params["token"])
        root = await run_in_threadpool(files_dir)
        if link.used_marker(root).exists():
            raise LinkError(410, USED)
        problem = await run_in_threadpool(waiting_problem, link.flow_run_id)
        if problem:
            raise LinkError(*problem)
        return link, root

    async def show(request: Request):
        try:
            link, _root = await opened(request)
        except LinkError as exc:
            return page("Member export", exc.message, exc.status)
        return _form_page(link)

    async def upload(request: Request):
        try:
            link, root = await opened(request)
        except LinkError as exc:
            return page("Member export", exc.message, exc.status)
        try:
            temp, members, uploaded_by = await _received(request, root, max_bytes)
        except ExportRefused as exc:
            return _form_page(link, str(exc), exc.status, exc.uploaded_by)
        try:
            return await _keep(link, root, temp, members, uploaded_by)
        finally:
            temp.unlink(missing_ok=True)

    return [
        Route("/member-export/{token}", show, methods=["GET"]),
        Route("/member-export/{token}", upload, methods=["POST"]),
    ]


async def _received(request: Request, root: Path, max_bytes: int) -> tuple[Path, int, str]:
    """The checked temporary copy of the posted export, its member count and the uploader's name."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ExportRefused("please upload the file with the form on this page")
    parser = MultiPartParser(
        request.headers, _limited(request.stream(), max_bytes), max_files=1, max_fields=4
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ExportRefused(f"the upload could not be read ({exc.message})") from None
    uploaded_by = " ".join(str(form.get("uploaded_by") or "").split())[:100]
    try:
        export = form.get("export")
        if not isinstance(export, UploadFile) or not export.filename:
            raise ExportRefused("choose the member export file to upload")
        if not uploaded_by or not uploaded_by.isprintable():
            raise ExportRefused("enter your name")
        temp, members = await run_in_threadpool(receive_export, export.file, root, export.filename, max_bytes)
        return temp, members, uploaded_by
    except ExportRefused as exc:
        exc.uploaded_by = uploaded_by if uploaded_by.isprintable() else ""  # shown again in the form
        raise
    finally:
        await form.close()


async def _keep(link: ExportLink, root: Path, temp: Path, members: int, uploaded_by: str):
    """Use the link (once), move the export into place and resume the run; undo both if it cannot go on."""
    folder, marker = link.folder(root), link.used_marker(root)
    destination = folder / EXPORT_NAME
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return page("Member export", USED, 410)
    os.replace(temp, destination)
    answer = MemberExportReceived(export_path=str(destination), uploaded_by=uploaded_by, members=members)
    problem = await run_in_threadpool(_resume, link, answer)
    if problem:
        destination.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
        return page("Member export", problem[1], problem[0])
    logger.info(
        "Member export for %s/%s received (%d members); run %s resumed",
        link.customer_key,
        link.upload_id,
        members,
        link.flow_run_id,
    )
    return page(
        _title(link),
        f"Thank you, {uploaded_by}. The member export ({members:,} members) was received and the runbook "
        "continues. You can close this page.",
    )
