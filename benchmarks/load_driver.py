"""A CSM who answers every gate at once: distinct customers' runs started together, each gate answered
as soon as its form is saved, and what the runs saw (LoadResult), for the load benchmarks and the
scale tests; call it inside `scale.api(...)`."""

from __future__ import annotations

import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from tasks.contracts import CUSTOMER_CHOICE, SETUP_GUIDES, SETUP_GUIDES_EMAIL, deployment_name


def customer(number: int, run_tag: str):
    """A distinct customer per run (own domain, own once-keys)."""
    from tasks.customer import Customer

    domain = f"load-{run_tag}-{number:03d}.example"
    return Customer(
        company_name=f"Load Test {number}",
        contact_first_name="Dana",
        contact_email=f"dana.admin@{domain}",
        platform="Workday",
        email_domains=[domain],
        tenant_url="https://load.10kc.example",
        hub_url="https://load.10kc.example/hub/main",
        csm={"name": "Casey Success", "email": "casey@10kc.example"},
        implementation_manager={"name": "Imani Manager", "email": "imani@10kc.example"},
        slack_channel="#am-load",
    )


APPROVE = {"decision": "approve", "approver": "Casey Success"}


def setup_guides_answers(choice: str = "not yet") -> dict[str, dict]:
    """The setup-guides gates answered as a CSM does: approve the email, record the customer's choice."""
    return {
        SETUP_GUIDES_EMAIL: APPROVE,
        CUSTOMER_CHOICE: {"option": choice, "answered_by": "Casey Success"},
    }


@dataclass
class LoadResult:
    """What a load run saw: final states, starts and resumes the API refused, resume→next-gate times."""

    runs: int
    final: Counter
    failed_starts: int
    failed_resumes: int
    resume_to_next: list[float]
    seconds: float
    errors: list[str]

    @property
    def completed(self) -> int:
        return self.final.get("COMPLETED", 0)

    def percentile(self, q: float) -> float:
        values = sorted(self.resume_to_next)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(q * (len(values) - 1)))]

    @property
    def median(self) -> float:
        return statistics.median(self.resume_to_next) if self.resume_to_next else float("nan")


def run_setup_guides(count: int, timeout: float = 600, choice: str = "not yet") -> tuple[list, LoadResult]:
    """Start `count` setup-guides runs at once and answer each gate as soon as its form is there.

    Returns the customers and what happened; call inside `api(...)`.
    """
    from prefect.deployments import run_deployment

    tag = uuid.uuid4().hex[:6]
    customers = [customer(n, tag) for n in range(count)]
    started = time.monotonic()
    ids, failed_starts, errors = [], 0, []
    for c in customers:
        for _attempt in range(5):  # a CSM whose click on Run got an error clicks again
            try:
                run = run_deployment(
                    deployment_name(SETUP_GUIDES),
                    parameters={"customer": c.model_dump()},
                    timeout=0,
                )
            except Exception as exc:
                failed_starts += 1
                errors.append(f"{c.company_name}: start failed: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            ids.append(run.id)
            break
    result = answer_gates(ids, setup_guides_answers(choice), timeout=timeout, started=started)
    result.failed_starts, result.errors = failed_starts, errors + result.errors
    return customers, result


def runs_of(flow_name: str, customers: list) -> list:
    """The ids of `flow_name`'s runs for these customers (started by their flows, not by us)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    domains = {c.email_domains[0] for c in customers}
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))
    return [run.id for run in runs if run.parameters["customer"]["email_domains"][0] in domains]


def answer_gates(
    ids: list, answers: dict[str, dict], timeout: float, stop_at: str = "", started: float | None = None
) -> LoadResult:
    """Answer each run's gates (by pause-key prefix) as soon as its form is saved, until every run
    has ended or waits at `stop_at`; a run at any other gate is an error."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.flow_runs import resume_flow_run
    from prefect.input.actions import read_flow_run_input

    started = started or time.monotonic()
    resumed_at: dict = {}  # run id -> (gate answered, when)
    answered: set = set()  # (run id, pause key) already resumed
    latencies: list[float] = []
    failed_resumes, errors = 0, []
    final: dict = {}
    with get_client(sync_client=True) as client:
        while len(final) < len(ids) and time.monotonic() - started < timeout:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids)
            )
            now = time.monotonic()
            for run in runs:
                state = run.state
                if state is None or run.id in final:
                    continue
                pause_key = state.state_details.pause_key if state.is_paused() else None
                if run.id in resumed_at and (
                    state.is_final() or (pause_key and (run.id, pause_key) not in answered)
                ):
                    latencies.append(now - resumed_at.pop(run.id)[1])
                if state.is_final():
                    final[run.id] = state.type.value
                    if not state.is_completed():
                        errors.append(f"{run.name}: {state.type.value}: {state.message}")
                    continue
                if stop_at and pause_key and pause_key.startswith(stop_at):
                    final[run.id] = f"WAITING AT {stop_at}"
                    continue
                if not pause_key or (run.id, pause_key) in answered:
                    continue
                keyset = state.state_details.run_input_keyset
                if not keyset or read_flow_run_input(keyset["schema"], flow_run_id=run.id) is None:
                    continue  # resume_flow_run would race the schema write
                gate = next((g for g in answers if pause_key.startswith(g)), None)
                if gate is None:
                    errors.append(f"{run.name}: unexpected gate {pause_key}")
                    final[run.id] = "UNEXPECTED-GATE"
                    continue
                try:
                    resume_flow_run(run.id, run_input=answers[gate])
                except Exception as exc:  # a CSM would click Resume again: so do we, next round
                    failed_resumes += 1
                    errors.append(f"{run.name}: resume at {gate} failed: {type(exc).__name__}: {exc}")
                    continue
                answered.add((run.id, pause_key))
                resumed_at[run.id] = (gate, time.monotonic())
            time.sleep(0.2)
    for run_id in set(ids) - set(final):
        final[run_id] = "UNFINISHED"
    return LoadResult(
        len(ids), Counter(final.values()), 0, failed_resumes, latencies, time.monotonic() - started, errors
    )
