"""Side effects that must happen once per customer and runbook step, however often a run repeats.

A task built with `once_task()` stores its result under a stable key in Prefect's result storage,
as a plain JSON record (tasks/records.py); a retry, a resumed (re-executed) flow or a manual re-run
finds the stored result and returns it instead of acting again. A lock makes two runs at the same
moment wait for each other (tasks/once_locks.py: locks that expire, are renewed while the step runs,
and are taken over from a dead process). Records that Prefect pickled before (key without `.json`)
still count.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import time
from collections.abc import Callable
from typing import Any

from prefect import Task
from prefect.cache_policies import CacheKeyFnPolicy
from prefect.filesystems import WritableFileSystem
from prefect.results import ResultStore, get_default_result_storage, get_result_store
from prefect.serializers import Serializer
from prefect.transactions import IsolationLevel
from pydantic import Field

from tasks.naming import step_run_name
from tasks.once_locks import (
    DEFAULT_HOLD_SECONDS,
    RENEW_IF_OURS,
    WAIT_LOG_SECONDS,
    ExpiringFileLocks,
    OnceLockTimeout,
    lock_manager,
    lock_renewed,
    lock_timeouts,
    logger,
    redis_locks,
)
from tasks.records import RecordError, dump_record, load_record, read_legacy_pickle

# The locks' names, imported from here by the flows, tasks/registry.py and the tests.
__all__ = [
    "DEFAULT_HOLD_SECONDS",
    "RENEW_IF_OURS",
    "WAIT_LOG_SECONDS",
    "ExpiringFileLocks",
    "OnceLockTimeout",
    "OnceRecordSerializer",
    "OnceRecordUnreadable",
    "OnceTask",
    "already_done",
    "attempt_began",
    "earlier_attempt",
    "forget_attempt",
    "lock_manager",
    "lock_renewed",
    "lock_timeouts",
    "logger",
    "note_attempt",
    "once_key",
    "once_policy",
    "once_task",
    "record_key",
    "redis_locks",
    "store_record",
]


def once_key(customer_key: str, step: str) -> str:
    """The storage key for one customer's runbook step; safe as a file name."""
    raw = f"once--{customer_key}--{step}"
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", raw)


def record_key(once_key: str) -> str:
    """Where a once-step's JSON record is stored; the bare once-key held Prefect's older pickles."""
    return f"{once_key}.json"


def _key_from_parameters(context: Any, parameters: dict[str, Any]) -> str:
    return record_key(parameters["once_key"])


class OnceRecordUnreadable(RuntimeError):
    """A stored once-record exists but cannot be read: the step is not run again blindly."""


class OnceRecordSerializer(Serializer):
    """Prefect's side of tasks/records.py: once-results stored as versioned JSON, never pickles."""

    type: str = Field(default="hris-once-record", frozen=True)

    def dumps(self, obj: Any) -> bytes:
        return dump_record(obj)

    def loads(self, blob: bytes) -> Any:
        return load_record(blob)


def once_policy() -> CacheKeyFnPolicy:
    """Cache on the task's `once_key` parameter, serialised by an expiring lock."""
    return CacheKeyFnPolicy(cache_key_fn=_key_from_parameters).configure(
        isolation_level=IsolationLevel.SERIALIZABLE, lock_manager=lock_manager()
    )


class OnceTask(Task):
    """A once-step that, already done, returns its record without creating a task run: a run that
    re-executes from the top after each resume shows every runbook step once, and walks past the
    done ones without a round of API calls each."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not {"return_state", "wait_for"} & kwargs.keys():
            key = inspect.signature(self.fn).bind_partial(*args, **kwargs).arguments.get("once_key")
            if key is not None and (done := already_done(key)) is not None:
                return done
        return super().__call__(*args, **kwargs)

    def with_options(self, **options: Any) -> OnceTask:
        changed = super().with_options(**options)
        changed.__class__ = OnceTask  # Prefect's with_options builds a plain Task
        return changed  # type: ignore[return-value]


def once_task(name: str, **options: Any) -> Callable[[Callable], Task]:
    """A Prefect task that acts once per its `once_key` parameter and keeps the result, named
    "<name> · Company · step" on the Runs page; `options` are other `@task` options (retries…)."""

    def decorate(fn: Callable) -> Task:
        @functools.wraps(fn)
        def act_unless_recorded_before(*args: Any, **kwargs: Any) -> Any:
            # Prefect found no JSON record; a record pickled by older code still means "done".
            key = inspect.signature(fn).bind(*args, **kwargs).arguments["once_key"]
            if (legacy := _legacy_record(key)) is not None:
                return legacy
            with lock_renewed(record_key(key)):
                return fn(*args, **kwargs)

        return OnceTask(
            act_unless_recorded_before,
            name=name,
            task_run_name=step_run_name(name),
            cache_policy=once_policy(),
            persist_result=True,
            result_serializer=OnceRecordSerializer(),
            **options,
        )

    return decorate


def _storage() -> WritableFileSystem:
    """The result storage once-records live in: this run's, else Prefect's default."""
    return get_result_store().result_storage or get_default_result_storage(_sync=True)


def _stored_bytes(key: str) -> bytes | None:
    """What the result storage holds under `key`, or None when nothing is stored there."""
    try:
        # `_sync=True`: Prefect's storage blocks answer synchronously even inside an event loop.
        return _storage().read_path(key, _sync=True)
    except (FileNotFoundError, ValueError):  # LocalFileSystem: "Path … does not exist"
        return None


def _legacy_record(key: str) -> Any | None:
    """The value of a record Prefect pickled under the bare once-key (code before 2026-12), or None."""
    stored = _stored_bytes(key)
    if stored is None:
        return None
    try:
        return read_legacy_pickle(stored)
    except RecordError as exc:
        raise OnceRecordUnreadable(
            f"once-step {key}: a record from an older version is stored but cannot be read ({exc}); "
            "the step is not repeated. Check or remove that file in the result storage, then retry."
        ) from None


def earlier_attempt(key: str) -> float | None:
    """When an earlier run began the side effect under `key` (epoch seconds), or None and this one
    is noted as the first: a retry after a killed worker then knows to look for what it did."""
    if (began := attempt_began(key)) is not None:
        return began
    note_attempt(key)
    return None


def attempt_began(key: str) -> float | None:
    """When an earlier run began the side effect under `key` and did not hear how it ended, or None."""
    began = already_done(f"{key}--attempt")
    return None if began is None else float(began)


def store_record(key: str, value: Any) -> None:
    """Store `value` as the record under `key`, replacing any there: state a later run reads back with
    `already_done` (tasks/deletion_grace.py), never a side effect that must happen once."""
    store = ResultStore(result_storage=_storage(), serializer=OnceRecordSerializer())
    store.write(value, key=record_key(key))


def note_attempt(key: str, began: float | None = None) -> None:
    """Note that the side effect under `key` begins now (`began=None` after a clear "no": forgotten)."""
    store = ResultStore(result_storage=_storage(), serializer=OnceRecordSerializer())
    store.write(time.time() if began is None else began, key=record_key(f"{key}--attempt"))


def forget_attempt(key: str) -> None:
    """The side effect under `key` clearly did not happen (the server said no): a retry may act."""
    store = ResultStore(result_storage=_storage(), serializer=OnceRecordSerializer())
    store.write(None, key=record_key(f"{key}--attempt"))


def already_done(key: str) -> Any | None:
    """The stored result of a once-only step, or None if it has not happened yet."""
    stored = _stored_bytes(record_key(key))
    if stored is None:
        return _legacy_record(key)
    try:
        return load_record(json.loads(stored)["result"].encode())
    except (RecordError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OnceRecordUnreadable(
            f"once-step {key}: its stored record cannot be read ({exc}); the step is not repeated. "
            "Check that file in the result storage, then retry."
        ) from None
