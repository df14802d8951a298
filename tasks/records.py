"""Once-records: what each once-only step stored, as plain versioned JSON that later code still reads.

A record is `{"v": 1, "kind": "<kind>", "data": <JSON>}`. The kind names what the step returned,
never a Python path, so moving or renaming a class changes nothing stored, and reading a record
runs no code. Records written before this format (Prefect's pickles, up to 3218f86) are read by
`read_legacy_pickle`, which accepts only the classes those records held.

Changing a record class: add fields with defaults, never remove or rename one; a new shape is a new
kind (or `v`), and `tests/test_once_records.py` reads the records every older version wrote.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from tasks.mapping import MappingCheck

RECORD_VERSION = 1


class SentEmail(BaseModel):
    """What was sent, kept as the once-only record of a runbook step's email."""

    message_id: str
    to: list[str]
    cc: list[str]
    subject: str
    sent_at: datetime


class SupportRequest(BaseModel):
    """Where a support request was posted; kept as the once-only record of the step."""

    channel: str
    ts: str
    permalink: str | None
    attachment_file_id: str | None = None


class SharedFiles(BaseModel):
    """Where one upload's (or sample's) files were shared in Slack."""

    channel: str
    files: list[str]
    message_ts: str


class Received(BaseModel):
    """What identifies an upload besides its claim: the SHA-256 and size of its bytes."""

    sha256: str
    size: int


class SampleFiles(BaseModel):
    """Where the files from the sample are, and their counts (for the review email)."""

    out_dir: str
    summary: dict[str, Any]


class SegmentsOutcome(BaseModel):
    """What the segment step did, in words for progress tables and run results."""

    mode: str = Field(description="api (through the hub API) or checklist (the CSM did it by hand)")
    segments_created: int = 0
    options_added: int = 0
    segments_checked: int = 0

    def __str__(self) -> str:
        if self.mode == "checklist":
            return f"{self.segments_checked} segment(s) updated by the CSM from the checklist"
        return f"{self.segments_created} segment(s) created, {self.options_added} option(s) added"


class SetupLinkIssued(BaseModel):
    """A long-lived setup link as made once per customer: what makes the same link again, never the
    link itself (records are plain text; older records, a plain string, held the link)."""

    base_url: str
    organization_id: str
    expires_at: int = Field(description="Unix time the link stops working")


class ShownFiles(BaseModel):
    """The SHA-256 of each generated file an apply gate showed, by its path in the upload's files
    folder (the three files and their hub-API copies): approving binds these bytes, and applying
    checks them again."""

    sha256: dict[str, str]


class DeletionGrace(BaseModel):
    """Who a customer's deletion grace holds after one upload (tasks/deletion_grace.py): each member by
    the SHA-256 of their email (never the email), with the UTC day they were first missing."""

    upload: str = Field(description="The claimed upload this state follows")
    days: int = Field(description="The registration's deletion_grace_days when the upload was compared")
    held: dict[str, str] = Field(default_factory=dict, description="Email SHA-256 -> first day missing")


class UnknownRecord(BaseModel):
    """A record this code cannot interpret (written by a newer version): the step still counts as done."""

    kind: str
    version: int
    data: Any
    problem: str


# The stored name of every record class. Add a line for a new class; never change a name.
KINDS: dict[str, type[BaseModel]] = {
    "sent-email": SentEmail,
    "support-request": SupportRequest,
    "shared-files": SharedFiles,
    "received-upload": Received,
    "sample-files": SampleFiles,
    "segments-outcome": SegmentsOutcome,
    "mapping-check": MappingCheck,
    "setup-link-issued": SetupLinkIssued,
    "shown-files": ShownFiles,
    "deletion-grace": DeletionGrace,
}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}
_PLAIN = (str, bool, int, float, dict, list, type(None))


class RecordError(ValueError):
    """A value that cannot be stored as a once-record, or stored bytes that are not one."""


def dump_record(value: Any) -> bytes:
    """The record of a once-step's result, as UTF-8 JSON."""
    if type(value) in _KIND_OF:
        kind, data = _KIND_OF[type(value)], value.model_dump(mode="json")
    elif isinstance(value, datetime):
        kind, data = "datetime", value.isoformat()
    elif isinstance(value, _PLAIN):
        kind, data = "json", value
    else:
        raise RecordError(
            f"a once-step returned a {type(value).__name__}, which is not a stored record kind: "
            "return plain JSON data or a class listed in tasks/records.py KINDS"
        )
    try:
        text = json.dumps({"v": RECORD_VERSION, "kind": kind, "data": data}, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"a once-step's {kind} result is not plain JSON data: {exc}") from None
    return text.encode()


def load_record(blob: bytes) -> Any:
    """A record's value. A record of an unknown kind or newer version reads as `UnknownRecord`,
    never as an error: Prefect takes an unreadable record for "not done" and would act again."""
    try:
        record = json.loads(blob)
        version, kind, data = record["v"], record["kind"], record["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"not a once-record: {exc}") from None
    if not isinstance(version, int) or version > RECORD_VERSION:
        return UnknownRecord(kind=str(kind), version=version, data=data, problem="written by a newer version")
    if kind == "json":
        return data
    if kind == "datetime":
        return datetime.fromisoformat(data)
    if kind not in KINDS:
        return UnknownRecord(kind=kind, version=version, data=data, problem="unknown kind")
    try:
        return KINDS[kind].model_validate(data)
    except ValidationError as exc:
        return UnknownRecord(kind=kind, version=version, data=data, problem=str(exc).splitlines()[0])


# --- records written by Prefect's pickle serializer (before the JSON records) -----------------------

# (module, class) as the pickles name them -> the kind they hold. Nested mapping-table parts read as
# plain data and are validated by MappingCheck.
_LEGACY_CLASSES = {
    ("tasks.emails", "SentEmail"): "sent-email",
    ("tasks.support", "SupportRequest"): "support-request",
    ("flows.process_upload", "SharedFiles"): "shared-files",
    ("flows.process_upload", "Received"): "received-upload",
    ("flows.sftp_integration", "SampleFiles"): "sample-files",
    ("flows.steps", "SegmentsOutcome"): "segments-outcome",
    ("tasks.mapping", "MappingCheck"): "mapping-check",
    ("tasks.mapping", "MappingTable"): None,
    ("tasks.mapping", "MappedField"): None,
    ("tasks.mapping", "MappedValue"): None,
    ("tasks.mapping", "ValidationReport"): None,
    ("tasks.mapping", "Finding"): None,
}
_LEGACY_GLOBALS = {
    ("datetime", "datetime"): datetime,
    ("datetime", "date"): date,
    ("datetime", "timedelta"): timedelta,
    ("datetime", "timezone"): timezone,
}


class _Captured:
    """An object of a legacy record class, kept as its pickled state and never constructed."""

    kind: str | None = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _RecordUnpickler(pickle.Unpickler):
    """Unpickles only what the old once-records held; any other class is refused, not imported."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _LEGACY_GLOBALS:
            return _LEGACY_GLOBALS[module, name]
        if (module, name) in _LEGACY_CLASSES:
            return type(name, (_Captured,), {"kind": _LEGACY_CLASSES[module, name]})
        raise pickle.UnpicklingError(f"{module}.{name} is not a class once-records held")


def _plain(value: Any) -> Any:
    if isinstance(value, _Captured):
        state = getattr(value, "state", {})
        fields = state.get("__dict__", state) if "__pydantic_fields_set__" in state else state
        return {key: _plain(item) for key, item in fields.items()}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def read_legacy_pickle(stored: bytes) -> Any:
    """The value of a record Prefect's pickle serializer wrote (its JSON wrapper as stored)."""
    try:
        wrapper = json.loads(stored)
        serializer = wrapper["metadata"]["serializer"]
        blob = base64.decodebytes(wrapper["result"].encode())
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"not a stored Prefect result: {exc}") from None
    if serializer.get("type") != "pickle":
        raise RecordError(f"stored with the {serializer.get('type')!r} serializer, not pickle")
    try:
        value = _RecordUnpickler(io.BytesIO(blob)).load()
    except Exception as exc:  # a refused class or a damaged pickle: say which
        raise RecordError(f"an old once-record could not be read: {exc}") from None
    if isinstance(value, _Captured):
        if value.kind is None:
            raise RecordError(f"an old once-record holds a {type(value).__name__}, not a step's result")
        return KINDS[value.kind].model_validate(_plain(value))
    return _plain(value)
