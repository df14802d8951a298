"""Side effects that must happen once per customer and runbook step, however often a run repeats.

A task built with `once_policy()` stores its result under a stable key in Prefect's result
storage; a retry, a resumed (re-executed) flow or a manual re-run finds the stored result and
returns it instead of acting again. A lock makes two runs at the same moment wait for each other.
"""

from __future__ import annotations

import re
from typing import Any

from prefect.cache_policies import CacheKeyFnPolicy
from prefect.locking.filesystem import FileSystemLockManager
from prefect.results import ResultStore, get_result_store
from prefect.settings import PREFECT_HOME
from prefect.transactions import IsolationLevel


def once_key(customer_key: str, step: str) -> str:
    """The storage key for one customer's runbook step; safe as a file name."""
    raw = f"once--{customer_key}--{step}"
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", raw)


def _key_from_parameters(context: Any, parameters: dict[str, Any]) -> str:
    return parameters["once_key"]


def once_policy() -> CacheKeyFnPolicy:
    """Cache on the task's `once_key` parameter, serialised by a file lock."""
    return CacheKeyFnPolicy(cache_key_fn=_key_from_parameters).configure(
        isolation_level=IsolationLevel.SERIALIZABLE,
        lock_manager=FileSystemLockManager(lock_files_directory=PREFECT_HOME.value() / "locks"),
    )


def already_done(key: str) -> Any | None:
    """The stored result of a once-only step, or None if it has not happened yet."""
    # The flow's own store keeps metadata apart (NullFileSystem in a flow run); task results don't.
    store = ResultStore(result_storage=get_result_store().result_storage)
    if not store.exists(key):
        return None
    return store.read(key).result
