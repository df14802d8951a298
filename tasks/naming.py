"""Run names a CSM recognises on the Runs page: the customer's company, then the flow or the step.

Every flow takes `flow_run_name=run_name("<flow>")` and every side-effect task
`task_run_name=step_run_name("<task>")`, so twenty customers in flight read as
"Globex Holdings · api-integration" and "send-email · Globex Holdings · setup-guides-email".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect.context import FlowRunContext


def customer_label(parameters: dict[str, Any]) -> str:
    """The company of a run's `customer` parameter (model or JSON), else its `customer_key`."""
    customer = parameters.get("customer")
    if isinstance(customer, dict):
        name = customer.get("company_name")
    else:
        name = getattr(customer, "company_name", None)
    return str(name or parameters.get("customer_key") or "unknown customer")


def _run_parameters() -> dict[str, Any]:
    context = FlowRunContext.get()
    return dict(context.parameters or {}) if context else {}


def run_name(flow_name: str) -> Callable[[], str]:
    """`flow_run_name` for a customer's flow: "Globex Holdings · api-integration"."""

    def name() -> str:
        return f"{customer_label(_run_parameters())} · {flow_name}"

    return name


def step_of(once_key: str) -> str:
    """The runbook step a once-key names (`once--acme-com--setup-guides-email` → `setup-guides-email`)."""
    return once_key.rsplit("--", 1)[-1]


def step_run_name(task_name: str) -> Callable[..., str]:
    """`task_run_name` for a side-effect task: "send-email · Globex Holdings · setup-guides-email"."""

    def name(parameters: dict[str, Any]) -> str:
        parts = [task_name, customer_label(_run_parameters())]
        if parameters.get("once_key"):
            parts.append(step_of(str(parameters["once_key"])))
        return " · ".join(parts)

    return name
