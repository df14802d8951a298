"""The locks that make two runs of one once-only step (tasks/once.py) wait for each other.

Locks expire (`HRIS_LOCK_HOLD_SECONDS`, default 600 s), so a worker killed inside a step cannot
block that step for ever; while the step runs, a thread of its process renews the lock every third
of that time, so a step slower than the hold time (a big hub apply) is never run twice. A lock file
left by a dead process on this machine is taken over at once. A run that waits longer than
`HRIS_LOCK_ACQUIRE_SECONDS` fails with who holds the lock and what to do. On one machine the locks
are files under PREFECT_HOME; with several machines set `HRIS_REDIS_URL` (Prefect's Redis lock
manager, `pip install 'hris-runbook[scale]'`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
from prefect.locking.filesystem import FileSystemLockManager
from prefect.locking.protocol import LockManager
from prefect.settings import PREFECT_HOME

DEFAULT_HOLD_SECONDS = 600
WAIT_LOG_SECONDS = 30  # a wait longer than this is logged, with who holds the lock

logger = logging.getLogger("hris_runbook.once")


class OnceLockTimeout(RuntimeError):
    """A once-only step stayed locked by another run for longer than the acquire timeout."""


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
