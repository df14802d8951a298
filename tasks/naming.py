"""Run names a CSM recognises on the Runs page: the customer's company, then the flow or the step.

Every flow takes `flow_run_name=run_name("<flow>")` (process-upload: `upload_run_name`) and every
side-effect task `task_run_name=step_run_name("<task>")`, so twenty customers in flight read as
"Globex Holdings · api-integration", "Acme Corp · employees.csv (2026-12-05)" and
"send-email · Globex Holdings · setup-guides-email" — words, never a once-key's hashes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from prefect.context import FlowRunContext

_HASH = re.compile(r"(?:^|-)[0-9a-f]{12,}(?=-|$)")  # a digest inside a once-key, with its dash
_companies: dict[tuple[str, str], str | None] = {}  # (flow run, customer key) → registered company


def _registered_company(customer_key: str) -> str | None:
    """The company of an SFTP registration, looked up once per flow run; None if unregistered."""
    context = FlowRunContext.get()
    cache_key = (str(context.flow_run.id) if context and context.flow_run else "", customer_key)
    if cache_key not in _companies:
        from tasks.registry import registration  # registry → Prefect Variables; only when needed

        try:
            found = registration(customer_key)
        except Exception:  # a name is never worth failing a run for
            found = None
        _companies[cache_key] = found.customer.company_name if found else None
    return _companies[cache_key]


def customer_label(parameters: dict[str, Any]) -> str:
    """The company of a run's `customer` parameter (model or JSON), else of its registered
    `customer_key`, else the key itself."""
    customer = parameters.get("customer")
    if isinstance(customer, dict):
        name = customer.get("company_name")
    else:
        name = getattr(customer, "company_name", None)
    key = parameters.get("customer_key")
    if not name and key:
        name = _registered_company(str(key))
    return str(name or key or "unknown customer")


def upload_label(upload: str) -> str:
    """A claimed upload as the customer knows it: `employees.csv (2026-12-05)`, the claim's day."""
    from tasks.sftp import claimed_on, original_name  # here: tasks.sftp imports paramiko (~0.2 s)

    day = claimed_on(upload)
    return f"{original_name(upload)} ({day})" if day else upload


def upload_run_label(company: str, upload: str) -> str:
    """The name of one upload's process-upload run: "Acme Corp · employees.csv (2026-12-05)"."""
    return f"{company} · {upload_label(upload)}"


def _run_parameters() -> dict[str, Any]:
    context = FlowRunContext.get()
    return dict(context.parameters or {}) if context else {}


def run_name(flow_name: str) -> Callable[[], str]:
    """`flow_run_name` for a customer's flow: "Globex Holdings · api-integration"."""

    def name() -> str:
        return f"{customer_label(_run_parameters())} · {flow_name}"

    return name


def upload_run_name() -> str:
    """`flow_run_name` for process-upload: the company (from the registration) and the file."""
    parameters = _run_parameters()
    return upload_run_label(customer_label(parameters), str(parameters.get("upload", "")))


def _sanitised(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", text)  # as tasks.once.once_key writes a key


def step_of(once_key: str, owners: list[str] | None = None) -> str:
    """The runbook step a once-key names (`once--acme.com--setup-guides-email` → `setup-guides-email`);
    `owners` are the customer keys or run ids the key may start with (a domain may hold '--')."""
    for owner in owners or []:
        prefix = _sanitised(f"once--{owner}--")
        if once_key.startswith(prefix):
            return once_key.removeprefix(prefix)
    return once_key.rsplit("--", 1)[-1]


def step_words(
    once_key: str, task_name: str, upload: str | None = None, owners: list[str] | None = None
) -> str:
    """What a once-key adds to the task's name, in words: no hashes, not the upload (named apart),
    nothing the task's name already says. Empty when it adds nothing."""
    step = step_of(once_key, owners)
    if upload and _sanitised(upload) in step:
        return ""
    words = _HASH.sub("", step).strip("-")
    return "" if not words or words in task_name else words


def _key_owners(run: dict[str, Any]) -> list[str]:
    """What this run's once-keys may start with: its own id, its customer's key."""
    context = FlowRunContext.get()
    owners = [str(context.flow_run.id)] if context and context.flow_run else []
    customer_key = run.get("customer_key") or getattr(run.get("customer"), "key", None)
    return owners + ([str(customer_key)] if customer_key else [])


def step_run_name(task_name: str) -> Callable[..., str]:
    """`task_run_name` for a side-effect task: "send-email · Globex Holdings · setup-guides-email",
    in process-upload "receive-upload · Acme Corp · employees.csv (2026-12-05)"."""

    def name(parameters: dict[str, Any]) -> str:
        run = _run_parameters()
        upload = str(run["upload"]) if run.get("upload") else None
        parts = [task_name, customer_label(run)] + ([upload_label(upload)] if upload else [])
        if parameters.get("once_key"):
            parts.append(step_words(str(parameters["once_key"]), task_name, upload, _key_owners(run)))
        return " · ".join(p for p in parts if p)

    return name


def review_run_name() -> str:
    """`flow_run_name` for mapping-review: "Acme Corp · mapping-review 2026-11", or the daily sweep's."""
    from tasks.contracts import MAPPING_REVIEW

    parameters = _run_parameters()
    if not parameters.get("customer_key"):
        return f"every customer · {MAPPING_REVIEW}"
    return f"{customer_label(parameters)} · {MAPPING_REVIEW} {parameters.get('period', '')}"
