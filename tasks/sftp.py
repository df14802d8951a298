"""Customer inboxes on the SFTP server: which uploads are complete, claiming them, archiving them.

Layout under `<inbox_root>/<customer key>/`: customers upload at the top level; a file is claimed
by an atomic rename into `processing/` (two overlapping watchers cannot both win it), archived into
`archive/` when its files are shared, or moved to `refused/` with the reason alerted.
"""

from __future__ import annotations

import posixpath
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paramiko

from tasks.contracts import ARCHIVE, PROCESSING, REFUSED, WORK_DIRS, inbox_folder

TEMPORARY_SUFFIXES = (".part", ".tmp", ".filepart", ".partial", ".crdownload", ".upload")
DONE_SUFFIX = ".done"  # `<name>.done`: the completion marker several HRIS vendors write after the file


@dataclass(frozen=True)
class Seen:
    name: str
    size: int
    mtime: int


class UnsafeName(ValueError):
    """A name from outside (an SFTP listing, a run parameter, a form) is not one plain file name."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_NAME_BYTES = 255


def _name_problem(name: str) -> str | None:
    """Why `name` is not a single, plain file name, or None."""
    if not name:
        return "it is empty"
    if "/" in name or "\\" in name:
        return "it contains a path"
    if name in (".", ".."):
        return "it names a folder"
    if _CONTROL.search(name):
        return "it contains a control character"
    if name.startswith("."):
        return "it starts with a dot (a hidden file)"
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    return None


def safe_file_name(name: str, what: str = "file name") -> str:
    """`name` unchanged when it is one plain file name; else UnsafeName saying what is wrong."""
    problem = _name_problem(name)
    if problem:
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise UnsafeName(f"{what} {shown!r} is not a plain file name: {problem}")
    return name


def inbox_path(inbox_root: str, customer_key: str) -> str:
    return posixpath.join(inbox_root, customer_key)


def refusal_reason(name: str, size: int, max_bytes: int) -> str | None:
    """Why an upload cannot be processed, or None. Names are checked before anything is opened, with
    room for the claim's stamp (a name that fits now must still fit once claimed)."""
    problem = _name_problem(name)
    if problem:
        return "the file name " + problem.removeprefix("it ")
    longest = MAX_NAME_BYTES - STAMP_BYTES
    if len(name.encode("utf-8", "surrogateescape")) > longest:
        return f"the file name is longer than {longest} bytes (the server's limit less the claim's stamp)"
    if not name.lower().endswith(".csv"):
        return "only .csv files are processed"
    if size > max_bytes:
        return f"the file is {size / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB limit"
    return None


def look(sftp: paramiko.SFTPClient, inbox: str, markers: dict[str, int] | None = None) -> dict[str, Seen]:
    """Regular, non-empty, non-temporary files at the inbox's top level; `markers` (if given) gets
    the completion markers found there (`<name>.done`: mtime, by the name they mark)."""
    seen = {}
    for entry in sftp.listdir_attr(inbox):
        name = entry.filename
        if not stat.S_ISREG(entry.st_mode or 0) or name.startswith("."):
            continue
        if name.lower().endswith(DONE_SUFFIX):
            if markers is not None:
                markers[name[: -len(DONE_SUFFIX)]] = int(entry.st_mtime or 0)
            continue
        if name.lower().endswith(TEMPORARY_SUFFIXES) or not entry.st_size:
            continue
        seen[name] = Seen(name, entry.st_size, int(entry.st_mtime or 0))
    return seen


def arrival_order(uploads) -> list[Seen]:
    """Oldest upload first: by SFTP mtime, then name (Employees_Nov.csv before a later Employees_Dec.csv)."""
    return sorted(uploads, key=lambda s: (s.mtime, s.name))


def marked_done(seen: dict[str, Seen], markers: dict[str, int]) -> list[Seen]:
    """Files whose completion marker was written after them: complete without waiting to settle."""
    return arrival_order(s for name, s in seen.items() if name in markers and markers[name] >= s.mtime)


def settled(first: dict[str, Seen], second: dict[str, Seen]) -> list[Seen]:
    """Files whose size and mtime did not change between two looks: the upload is complete."""
    return arrival_order(s for name, s in second.items() if first.get(name) == s)


def remove_marker(sftp: paramiko.SFTPClient, inbox: str, name: str) -> None:
    """Drop a claimed upload's completion marker, so a later upload of the same name is not taken
    as complete by it."""
    try:
        sftp.remove(posixpath.join(inbox, _listed_name(name) + DONE_SUFFIX))
    except FileNotFoundError:
        pass


def _ensure_dirs(sftp: paramiko.SFTPClient, inbox: str) -> None:
    existing = set(sftp.listdir(inbox))
    for name in WORK_DIRS:
        if name not in existing:
            try:
                sftp.mkdir(posixpath.join(inbox, name))
            except OSError:
                pass  # another watcher made it first


class ClaimUnclear(RuntimeError):
    """The server did not answer a claim, and could not be asked afterwards where the file is."""


# Failures that say nothing about whether the rename happened: no answer, or no connection.
_NO_ANSWER = (TimeoutError, EOFError, ConnectionError, paramiko.SSHException)


def claim(sftp: paramiko.SFTPClient, inbox: str, name: str, claimed_as: str | None = None) -> bool:
    """Move the upload into processing/ (as `claimed_as`) atomically; False if another watcher won.

    A rename without an answer (a timeout, a dropped connection) may have happened: we then look
    in a fresh session (the old one may still be busy): in processing/ means ours, still in the
    inbox is renamed again. If the server cannot be asked, `ClaimUnclear` says where to look.
    """
    safe_file_name(name, "upload")
    safe_file_name(claimed_as or name, "claimed name")
    _ensure_dirs(sftp, inbox)
    source, target = posixpath.join(inbox, name), inbox_folder(inbox, PROCESSING, claimed_as or name)
    try:
        sftp.posix_rename(source, target)
        return True
    except _NO_ANSWER as exc:
        problem = exc.__class__.__name__
    except OSError:
        return False  # the server answered: gone from the inbox (another watcher won), or refused
    try:
        return _claim_again(sftp, source, target)
    except (*_NO_ANSWER, OSError) as exc:
        raise ClaimUnclear(
            f"claiming {name}: the SFTP server did not answer the rename ({problem}) nor a second look "
            f"({exc.__class__.__name__}); it is either still in {posixpath.dirname(source)} or in "
            f"{posixpath.dirname(target)}, where the next watch picks it up"
        ) from None


def _claim_again(sftp: paramiko.SFTPClient, source: str, target: str) -> bool:
    """After an unanswered rename: True if the file is (now) in processing/, in a fresh session."""
    channel = sftp.get_channel()
    with paramiko.SFTPClient.from_transport(channel.get_transport()) as fresh:
        fresh.get_channel().settimeout(channel.gettimeout())
        if _exists(fresh, source):
            try:
                fresh.posix_rename(source, target)
                return True
            except FileNotFoundError:
                pass  # the first rename finished meanwhile
        return _exists(fresh, target)


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
        return True
    except FileNotFoundError:
        return False


def missing_from_inbox(sftp: paramiko.SFTPClient, inbox: str, name: str, shown_as: str) -> str | None:
    """None when `name` is a file in the inbox; else one line saying so and what is there."""
    try:
        entries = sftp.listdir_attr(inbox)
    except FileNotFoundError:
        return f"`{name}` is not in `{shown_as}/`: that folder is not on the SFTP server yet"
    files = sorted(e.filename for e in entries if stat.S_ISREG(e.st_mode or 0))
    if name in files:
        return None
    there = ", ".join(f"`{f}`" for f in files[:10]) + (
        f" and {len(files) - 10} more" if len(files) > 10 else ""
    )
    return f"`{name}` is not in `{shown_as}/`; files there: {there or 'none'}"


# `20261126T091500Z-` (older claims) or `20261126T091500.123456Z-`: the microseconds keep the order
# of uploads claimed in one tick (claimed oldest first) in their names.
_STAMP = re.compile(r"^\d{8}T\d{6}(?:\.\d{6})?Z-")
STAMP_BYTES = len("20261126T091500.123456Z-")


def _stamped(name: str) -> str:
    """`<UTC time>-<name>`; a name stamped at its claim keeps that stamp."""
    return name if _STAMP.match(name) else f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{name}"


def claim_name(name: str, now: datetime | None = None) -> str:
    """The name an upload gets when claimed: the claim's UTC time to the microsecond first, so each
    claim is its own unit of work (weekly uploads share a file name) and claims sort oldest first,
    also when one tick claims several (in arrival order)."""
    return f"{now or datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}-{name}"


def original_name(claimed: str) -> str:
    """The customer's file name inside a claimed name."""
    return _STAMP.sub("", claimed, count=1)


def claimed_on(claimed: str) -> str | None:
    """The UTC day of a claim (`2026-12-05`) from the claimed name; None for a name never claimed."""
    if not _STAMP.match(claimed):
        return None
    return f"{claimed[0:4]}-{claimed[4:6]}-{claimed[6:8]}"


def _listed_name(name: str) -> str:
    """A name as an SFTP listing gives it: one folder entry, possibly with odd characters (a backslash
    is one of them on a POSIX server)."""
    if not name or "/" in name or "\x00" in name or name in (".", ".."):
        safe_file_name(name, "upload")  # raises, saying what is wrong
    return name


def refuse(sftp: paramiko.SFTPClient, inbox: str, name: str, from_dir: str = "") -> str:
    """Move a refused upload out of the way (into refused/) so it is alerted once; an odd name (control
    characters, a leading dot) is kept there under a cleaned one."""
    _listed_name(name)
    if from_dir not in ("", PROCESSING):
        raise UnsafeName(f"refuse from {from_dir!r}: only the inbox or processing/")
    _ensure_dirs(sftp, inbox)
    cleaned = _CONTROL.sub("_", name.replace("\\", "_")).lstrip(".")[-200:] or "unnamed"
    target = inbox_folder(inbox, REFUSED, _stamped(cleaned))
    sftp.posix_rename(posixpath.join(inbox, from_dir, name), target)
    return target


def archive(sftp: paramiko.SFTPClient, inbox: str, name: str) -> str | None:
    """processing/<name> -> archive/<time>-<name>; None if it was archived already."""
    safe_file_name(name, "upload")
    source = inbox_folder(inbox, PROCESSING, name)
    try:
        sftp.stat(source)
    except FileNotFoundError:
        return None
    _ensure_dirs(sftp, inbox)
    target = inbox_folder(inbox, ARCHIVE, _stamped(name))
    sftp.posix_rename(source, target)
    return target


class DownloadRefused(ValueError):
    """A customer's file we will not download (a link, not a regular file, too large): one line."""


def download(sftp: paramiko.SFTPClient, remote: str, local: Path, max_bytes: int) -> Path:
    """Fetch one regular file of at most `max_bytes`; neither the remote path may climb out of its
    folder nor the local name be odd. A customer can leave a symlink (to another customer's inbox,
    /dev/zero) or a huge file: lstat right before reading, stream with the cap, keep no partial copy."""
    if ".." in remote.split("/"):
        raise UnsafeName(f"remote path {remote!r} climbs out of its folder ('..')")
    name = safe_file_name(posixpath.basename(remote), "remote file name")
    safe_file_name(local.name, "local file name")
    before = sftp.lstat(remote)
    if not stat.S_ISREG(before.st_mode or 0):
        raise DownloadRefused(f"{name}: not a regular file (a link, folder or device); not downloaded")
    limit = f"the limit of {max_bytes / 2**20:g} MB (SFTP Server block max_upload_mb)"
    if (before.st_size or 0) > max_bytes:
        raise DownloadRefused(f"{name}: {before.st_size:,} bytes, over {limit}; not downloaded")
    try:
        with sftp.open(remote, "rb") as source, local.open("wb") as out:
            opened = source.stat()  # the file actually opened: still the one lstat saw?
            if not stat.S_ISREG(opened.st_mode or 0) or opened.st_size != before.st_size:
                raise DownloadRefused(
                    f"{name}: changed while being opened (replaced by a link?); not downloaded"
                )
            total = 0
            while chunk := source.read(2**20):
                total += len(chunk)
                if total > max_bytes:
                    raise DownloadRefused(f"{name}: grew over {limit} while downloading; not downloaded")
                out.write(chunk)
    except BaseException:
        local.unlink(missing_ok=True)
        raise
    return local


def purge_handled(sftp: paramiko.SFTPClient, inbox: str, cutoff: datetime) -> int:
    """Delete uploads in archive/ and refused/ last changed before `cutoff`; never touch the inbox
    itself or processing/ (uploads not handled yet)."""
    removed = 0
    for folder in (ARCHIVE, REFUSED):
        path = posixpath.join(inbox, folder)
        try:
            entries = sftp.listdir_attr(path)
        except FileNotFoundError:
            continue
        for entry in entries:
            known_age = entry.st_mtime is not None  # a server that hides times keeps its files
            if stat.S_ISREG(entry.st_mode or 0) and known_age and entry.st_mtime < cutoff.timestamp():
                sftp.remove(posixpath.join(path, entry.filename))
                removed += 1
    return removed
