"""Side effects that must happen once per customer and runbook step, however often a run repeats.

A task built with `once_task()` stores its result under a stable key in Prefect's result storage,
as a plain JSON record (tasks/records.py); a retry, a resumed (re-executed) flow or a manual re-run
finds the stored result and returns it instead of acting again. A lock makes two runs at the same
moment wait for each other. Records that Prefect pickled before (key without `.json`) still count.

Locks expire (`HRIS_LOCK_HOLD_SECONDS`, default 600 s), so a worker killed inside a step cannot
block that step for ever; while the step runs, a thread of its process renews the lock every third
of that time, so a step slower than the hold time (a big hub apply) is never run twice. A lock file
left by a dead process on this machine is taken over at once. A run that waits longer than
`HRIS_LOCK_ACQUIRE_SECONDS` fails with who holds the lock and what to do. On one machine the locks
are files under PREFECT_HOME; with several machines set `HRIS_REDIS_URL` (Prefect's Redis lock
manager, `pip install 'hris-runbook[scale]'`).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from prefect import Task
from prefect.cache_policies import CacheKeyFnPolicy
from prefect.filesystems import WritableFileSystem
from prefect.locking.filesystem import FileSystemLockManager
from prefect.locking.protocol import LockManager
from prefect.results import ResultStore, get_default_result_storage, get_result_store
from prefect.serializers import Serializer
from prefect.settings import PREFECT_HOME
from prefect.transactions import IsolationLevel
from pydantic import Field

from tasks.naming import step_run_name
from tasks.records import RecordError, dump_record, load_record, read_legacy_pickle

DEFAULT_HOLD_SECONDS = 600
WAIT_LOG_SECONDS = 30  # a wait longer than this is logged, with who holds the lock

logger = logging.getLogger("hris_runbook.once")


class OnceLockTimeout(RuntimeError):
    """A once-only step stayed locked by another run for longer than the acquire timeout."""


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


def lock_timeouts() -> tuple[float, float]:
    """(hold, acquire) seconds from HRIS_LOCK_HOLD_SECONDS / HRIS_LOCK_ACQUIRE_SECONDS."""
    hold = _seconds("HRIS_LOCK_HOLD_SECONDS", DEFAULT_HOLD_SECONDS)
    # Waiting a little past the holder's expiry means a waiter gives up only on a lock that
    # outlived its own expiry (a clock problem or a hand-made lock), never on a slow step.
    acquire = _seconds("HRIS_LOCK_ACQUIRE_SECONDS", hold + 60)
    return hold, acquire


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name}: must be more than 0 seconds, got {raw!r}")
    return value


def _log_outlived(key: str, hold_seconds: float) -> None:
    logger.warning(
        "Once-step %s took longer than its lock (HRIS_LOCK_HOLD_SECONDS=%.0f); raise that setting",
        key,
        hold_seconds,
    )


def _log_waiting(key: str, holder: str, until: str, remedy: str) -> None:
    logger.warning("Once-step %s is locked by %s until %s; waiting. %s", key, holder, until, remedy)


class ExpiringFileLocks(FileSystemLockManager):
    """File locks that expire, name their process, and are taken over when that process is gone."""

    def __init__(self, lock_files_directory: Path, hold_seconds: float, acquire_seconds: float):
        super().__init__(lock_files_directory)
        self.hold_seconds, self.acquire_seconds = hold_seconds, acquire_seconds

    def acquire_lock(self, key, holder, acquire_timeout=None, hold_timeout=None) -> bool:
        # Prefect's transactions pass no timeouts; ours apply unless a caller gives its own.
        acquire_timeout = acquire_timeout or self.acquire_seconds
        hold_timeout = hold_timeout or self.hold_seconds
        if not super().acquire_lock(key, holder, acquire_timeout, hold_timeout):
            raise OnceLockTimeout(self._still_locked(key, acquire_timeout))
        info = self._locks[key]
        info["pid"], info["host"] = os.getpid(), socket.gethostname()
        record = {k: info[k] for k in ("holder", "pid", "host")} | {"expiration": str(info["expiration"])}
        Path(info["path"]).write_text(json.dumps(record))
        return True

    async def aacquire_lock(self, key, holder, acquire_timeout=None, hold_timeout=None) -> bool:
        return await anyio.to_thread.run_sync(self.acquire_lock, key, holder, acquire_timeout, hold_timeout)

    def release_lock(self, key: str, holder: str) -> None:
        try:
            super().release_lock(key, holder)
        except ValueError:  # the step outlived its lock: the work is done, say so, don't fail it
            _log_outlived(key, self.hold_seconds)

    def renew(self, key: str) -> bool:
        """Push this process's lock on `key` hold_seconds into the future; False if it holds none."""
        path = self._lock_path_for_key(key)
        try:
            record = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return False
        if record.get("pid") != os.getpid() or record.get("host") != socket.gethostname():
            return False
        record["expiration"] = str(datetime.now(UTC) + timedelta(seconds=self.hold_seconds))
        written = path.with_name(f"{path.name}.{os.getpid()}.renew")
        written.write_text(json.dumps(record))
        os.replace(written, path)  # readers see the old record or the new one, never half of one
        return True

    def _lock_path_for_key(self, key: str) -> Path:
        # Prefect's `with_suffix(".lock")` cuts a key at its last dot: every step of acme.com and
        # acme.io shared "once--acme.lock". One file per key.
        if (info := self._locks.get(key)) is not None:
            return info["path"]
        return self.lock_files_directory / f"{key}.lock"

    def _get_lock_info(self, key: str, use_cache: bool = True):
        try:
            return super()._get_lock_info(key, use_cache)
        except ValueError:  # created, not yet written (or its writer died in between): age decides
            path = self._lock_path_for_key(key)
            try:
                written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            except FileNotFoundError:
                return None
            return {
                "holder": "unknown",
                "expiration": written + timedelta(seconds=self.hold_seconds),
                "path": path,
            }

    def is_locked(self, key: str, use_cache: bool = False) -> bool:
        info = self._get_lock_info(key, use_cache=use_cache)
        if info is not None and _holder_is_gone(info):
            logger.warning(
                "Taking over the lock of once-step %s: process %s that held it is gone", key, info["pid"]
            )
            Path(info["path"]).unlink(missing_ok=True)
            self._locks.pop(key, None)
            return False
        return super().is_locked(key, use_cache=use_cache)

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        started, logged = time.monotonic(), False
        while self.is_locked(key, use_cache=False):
            waited = time.monotonic() - started
            if timeout and waited >= timeout:
                return False
            if not logged and waited >= WAIT_LOG_SECONDS:
                info = self._get_lock_info(key) or {}
                _log_waiting(key, _describe(info), str(info.get("expiration")), self._remedy(key))
                logged = True
            time.sleep(0.1)
        return True

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        return await anyio.to_thread.run_sync(self.wait_for_lock, key, timeout)

    def _remedy(self, key: str) -> str:
        return (
            "If that run is still working, let it finish; if its process died on another machine, "
            f"delete {self._lock_path_for_key(key)} (or wait until the lock expires)."
        )

    def _still_locked(self, key: str, waited: float) -> str:
        info = self._get_lock_info(key, use_cache=False) or {}
        return (
            f"once-step {key} is still locked after {waited:.0f}s by {_describe(info)} "
            f"(expires {info.get('expiration')}). {self._remedy(key)} Then run this flow again."
        )


def _describe(info: dict) -> str:
    if "pid" in info:
        return f"run {info.get('holder')} (process {info['pid']} on {info.get('host')})"
    return f"run {info.get('holder', 'unknown')}"


def _holder_is_gone(info: dict) -> bool:
    """Whether the lock's process ran on this machine and no longer exists."""
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return False
    if info["pid"] == os.getpid():
        return False
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(info["pid"])


def _is_zombie(pid: int) -> bool:
    """A killed child its parent has not reaped yet still answers kill(0); /proc tells."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


RENEW_IF_OURS = """
local holder = redis.call('GET', KEYS[1])
if holder and string.sub(holder, 1, string.len(ARGV[1])) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


def redis_locks(url: str, hold_seconds: float, acquire_seconds: float) -> LockManager:
    """Prefect's Redis lock manager (locks shared by every worker), with our timeouts."""
    try:
        from prefect_redis.locking import RedisLockManager
    except ImportError:
        raise RuntimeError(
            "HRIS_REDIS_URL is set but prefect-redis is not installed: pip install 'hris-runbook[scale]'"
        ) from None

    class ExpiringRedisLocks(RedisLockManager):
        """Redis locks that expire after hold_seconds and fail a wait with who holds them."""

        def acquire_lock(self, key, holder, acquire_timeout=None, hold_timeout=None) -> bool:
            acquire_timeout = acquire_timeout or acquire_seconds
            hold_timeout = hold_timeout or hold_seconds
            if super().acquire_lock(key, holder, acquire_timeout, hold_timeout):
                return True
            raise OnceLockTimeout(self._still_locked(key, acquire_timeout))

        async def aacquire_lock(self, key, holder, acquire_timeout=None, hold_timeout=None) -> bool:
            acquire_timeout = acquire_timeout or acquire_seconds
            hold_timeout = hold_timeout or hold_seconds
            if await super().aacquire_lock(key, holder, acquire_timeout, hold_timeout):
                return True
            raise OnceLockTimeout(self._still_locked(key, acquire_timeout))

        def release_lock(self, key: str, holder: str) -> None:
            try:
                super().release_lock(key, holder)
            except ValueError:  # expired and taken by another run: the work is done, say so
                _log_outlived(key, hold_seconds)

        def renew(self, key: str) -> bool:
            """Reset the TTL of this process's lock on `key` (holders start "host:pid:")."""
            prefix = f"{socket.gethostname()}:{os.getpid()}:"
            name = self._lock_name_for_key(key)
            return bool(self.client.eval(RENEW_IF_OURS, 1, name, prefix, int(hold_seconds * 1000)))

        def _still_locked(self, key: str, waited: float) -> str:
            name = self._lock_name_for_key(key)
            holder = self.client.get(name)
            ttl = self.client.pttl(name)
            return (
                f"once-step {key} is still locked after {waited:.0f}s by run "
                f"{holder.decode() if holder else 'unknown'} (Redis key {name}, expires in "
                f"{max(ttl, 0) / 1000:.0f}s). If that run is still working, let it finish; otherwise "
                f"delete the Redis key {name} (or wait until it expires). Then run this flow again."
            )

        def __reduce__(self):
            return (redis_locks, (url, hold_seconds, acquire_seconds))

    return ExpiringRedisLocks(connection_url=url)


def lock_manager() -> LockManager:
    """Redis locks when HRIS_REDIS_URL is set (several workers), else files in PREFECT_HOME."""
    hold, acquire = lock_timeouts()
    if url := os.environ.get("HRIS_REDIS_URL", "").strip():
        return redis_locks(url, hold, acquire)
    return ExpiringFileLocks(PREFECT_HOME.value() / "locks", hold, acquire)


@contextmanager
def lock_renewed(key: str) -> Iterator[None]:
    """Keep this process's lock on `key` alive while the step runs: renewed every third of the hold
    time, and no longer once the step is over (before Prefect releases the lock)."""
    manager, (hold, _) = lock_manager(), lock_timeouts()
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(hold / 3):
            try:
                manager.renew(key)
            except Exception as exc:  # a missed renewal only shortens the hold; never fail the step
                logger.warning(
                    "Could not renew the lock of once-step %s: %s: %s", key, type(exc).__name__, exc
                )

    renewer = threading.Thread(target=renew, name=f"renew {key}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()


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
