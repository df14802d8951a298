"""The one approval gate every flow uses: show what is to be decided, wait for a person, record it.

In a deployment run the gate suspends the run (no worker is held while a CSM or the customer takes
days); run outside a deployment it pauses in-process. Either way it never times out into failure:
while it waits, reminders go out and it keeps waiting.
"""

from __future__ import annotations

import functools
import itertools
import time
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.exceptions import NotPausedError
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.input.actions import create_flow_run_input, read_flow_run_input
from prefect.states import Cancelled, Paused
from prefect.variables import Variable
from pydantic import BaseModel, Field, ValidationError, model_validator

from tasks.contracts import APPROVAL_FORM, answer_keyset, artifact_key, asked_again
from tasks.customer import describe_validation_error
from tasks.gate_notices import (
    Notify,
    current_run_id,
    masked,
    notify_in_slack,
    run_link,
    send_reminder,
    waiting_notice,
)
from tasks.once import once_key, once_task
from tasks.private_apis import propose_state_sync
from tasks.wait import WAIT_SETTINGS_VARIABLE, WaitSettings

F = TypeVar("F", bound=RunInput)


def wait_settings(given: WaitSettings | dict | None = None) -> WaitSettings:
    """The timing of every gate: `given` (old callers), else the `hris_wait_settings` Variable, else defaults.

    Timing is for operators, not CSMs, so it lives in a Variable rather than in the flows' forms.
    """
    if isinstance(given, WaitSettings):
        return given
    value = given if given else Variable.get(WAIT_SETTINGS_VARIABLE, default=None)
    if not value:
        return WaitSettings()
    try:
        return WaitSettings.model_validate(value)
    except ValidationError as exc:
        get_run_logger().warning(
            "Variable %s ignored (%s); using the defaults",
            WAIT_SETTINGS_VARIABLE,
            describe_validation_error(exc),
        )
        return WaitSettings()


class Approval(RunInput):
    """Approve or reject what the form shows."""

    slack_form: ClassVar[str] = APPROVAL_FORM  # a Slack button can answer it

    decision: Literal["approve", "reject"] = Field(
        title="Decision", description="approve to go ahead, reject to stop the run"
    )
    approver: str = Field(
        min_length=1, title="Your name", description="Recorded with the decision (the UI has no log-in)"
    )
    reason: str = Field(
        default="", title="Reason", description="Why, when rejecting (recorded and shown on the run)"
    )

    @model_validator(mode="after")
    def _reject_needs_reason(self) -> Approval:
        if self.decision == "reject" and not self.reason.strip():
            raise ValueError("reason: say why you reject, so the run records it")
        return self


class Rejected(Exception):
    """A person rejected what a gate asked them to approve; the run stops here."""

    def __init__(self, gate: str, approver: str, reason: str):
        super().__init__(f"{gate} rejected by {approver}: {reason}")
        self.gate, self.approver, self.reason = gate, approver, reason


def _in_deployment() -> bool:
    context = FlowRunContext.get()
    return bool(context and context.flow_run and context.flow_run.deployment_id)


def _answer_already_given(form: type[F], keyset: dict[str, str]) -> F | None:
    """A resumed run re-executes from the top; a gate answered before returns its answer again."""
    if read_flow_run_input(keyset["response"]) is None:
        return None
    return form.load(keyset)


def _pause_in_process(form: type[F], key: str, title: str, wait: WaitSettings, notify: Notify | None) -> F:
    """Pause without an expiry (an expired pause fails the run) and poll, reminding as we go."""
    context = FlowRunContext.get()
    proposed = Paused(pause_key=key)
    keyset = answer_keyset(key, suspended=False)
    proposed.state_details.run_input_keyset = keyset
    with get_client(sync_client=True) as client:
        state = propose_state_sync(client=client, state=proposed, flow_run_id=context.flow_run.id)
        if state.is_running():
            return form.load(keyset)
        if not state.is_paused():
            raise RuntimeError(f"Flow run cannot be paused: the server answered {state.type.value}")
        form.save(keyset)
        started = last_reminder = time.monotonic()
        remind_every = wait.remind_after_hours * 3600
        while True:
            time.sleep(wait.poll_seconds)
            run = client.read_flow_run(context.flow_run.id)
            if run.state and run.state.is_running():
                return form.load(keyset)
            if run.state and run.state.is_final():
                raise RuntimeError(f"{title}: the run was {run.state.type.value.lower()} while waiting")
            if time.monotonic() - last_reminder >= remind_every:
                send_reminder(context.flow_run.id, title, key, (time.monotonic() - started) / 3600, notify)
                last_reminder = time.monotonic()


def _ask_once(
    form: type[F],
    key: str,
    title: str,
    description: str,
    wait: WaitSettings,
    initial: dict[str, Any] | None,
    notify: Notify | None,
    details: str = "",
    private: dict[str, str] | None = None,
) -> F:
    mode = "suspended" if _in_deployment() else "paused"
    markdown = f"## {title}\n\n{description}\n"  # read in the UI: no link to this very page (Slack has it)
    # fields left as shown (e.g. an email's subject) are not in a resumed answer: the same initial
    # data fills them in when a re-executed run reads the answer back
    with_form = form.with_initial_data(description=markdown, **(initial or {}))
    answered = _answer_already_given(with_form, answer_keyset(key, suspended=mode == "suspended"))
    if answered is not None:
        return answered
    create_markdown_artifact(
        key=artifact_key("waiting", key), markdown=masked(markdown, private), description=title
    )
    get_run_logger().info("Waiting for a person: %s (%s)", title, run_link())
    buttons = (key, form.slack_form) if hasattr(form, "slack_form") else None
    notify_in_slack(notify, waiting_notice(title, masked(details, private)), buttons)
    if mode == "suspended":
        return suspend_flow_run(wait_for_input=with_form, key=key, timeout=None)
    return _pause_in_process(with_form, key, title, wait, notify)


def ask(
    form: type[F],
    *,
    key: str,
    title: str,
    description: str,
    wait: WaitSettings | None = None,
    initial: dict[str, Any] | None = None,
    notify: Notify | None = None,
    details: str = "",
    private: dict[str, str] | None = None,
) -> F:
    """Publish `description`, wait for a person to fill in `form`, and return their answer.

    `details` (Slack text) goes into the Slack notice after the title. `private` maps values only
    the form may show (a link the person copies from there) to what the artifact and Slack show.

    `key` must be stable for this question in this run: a resumed run re-executes from the top and
    finds the answer under the same key. The UI checks only the form's types; an answer that fails
    the form's own checks (a reject without a reason, a link that is not a URL) is asked again,
    with the problem shown, instead of failing the run.
    """
    wait = wait_settings(wait)
    attempt_key, problem = key, ""
    for attempt in itertools.count(1):
        try:
            return _ask_once(
                form, attempt_key, title, problem + description, wait, initial, notify, details, private
            )
        except ValidationError as exc:
            problem = (
                f"**The last answer could not be used** ({describe_validation_error(exc)}). "
                "Please answer again.\n\n"
            )
            attempt_key = asked_again(key, attempt)
            get_run_logger().warning(
                "%s: answer not usable, asking again (%s)", title, describe_validation_error(exc)
            )
    raise AssertionError("unreachable")


@once_task("record-decision")
def record_decision(once_key: str, title: str, who: str, decision: str, details: str = "") -> str:
    """Keep who decided what and when, once per gate and run, as a markdown artifact."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    markdown = f"### {title}\n\n| who | when | decision |\n|---|---|---|\n| {who} | {when} | {decision} |\n"
    if details:
        markdown += f"\n{details}\n"
    create_markdown_artifact(key=artifact_key("decision", once_key), markdown=markdown, description=title)
    get_run_logger().info("%s: %s by %s", title, decision, who)
    return markdown


def record(gate_key: str, title: str, who: str, decision: str, details: str = "") -> None:
    """Record a gate's answer once for this run, even when the run re-executes after a resume."""
    record_decision(once_key(current_run_id(), gate_key), title, who, decision, details)


def decide(key: str, title: str, answer: Approval, details: str = "") -> Approval:
    """Record an approve / reject answer; a rejection raises `Rejected` with the reason recorded."""
    reason = f"Reason: {answer.reason}" if answer.reason else ""
    record(key, title, answer.approver, answer.decision, "\n\n".join(p for p in (reason, details) if p))
    if answer.decision == "reject":
        raise Rejected(title, answer.approver, answer.reason)
    return answer


def request_approval(
    *,
    key: str,
    title: str,
    what: str,
    wait: WaitSettings | None = None,
    notify: Notify | None = None,
    details: str = "",
) -> Approval:
    """Ask for approve / reject; a rejection raises `Rejected` with the reason recorded. `details`
    (Slack text) shows in the Slack notice what an Approve click approves."""
    answer = ask(Approval, key=key, title=title, description=what, wait=wait, notify=notify, details=details)
    return decide(key, title, answer)


M = TypeVar("M", bound=BaseModel)


def _signal_key(key: str) -> str:
    return f"signal-{key}"


def send_signal(flow_run_id: UUID | str, key: str, value: BaseModel) -> None:
    """Hand a waiting run the value it waits for under `key` and resume it (flow to flow: no form).

    A run that does not wait yet finds the value when it gets there."""
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.flow_runs import resume_flow_run

    run_id = UUID(str(flow_run_id))
    try:
        create_flow_run_input(_signal_key(key), value.model_dump(mode="json"), flow_run_id=run_id)
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code != 409:
            raise  # 409: sent before (a retried sender): the first value stands
    try:
        resume_flow_run(run_id)
    except NotPausedError:
        pass


def wait_for_signal(
    model: type[M], *, key: str, title: str, description: str, notify: Notify | None = None
) -> M:
    """Wait until another flow calls `send_signal` for this run and `key`, then return its value.

    The run shows a plain Resume button, not a form: a person who resumes it early only makes it wait
    again (under the next pause key, since a used key cannot pause twice).
    """
    for attempt in itertools.count():
        value = read_flow_run_input(_signal_key(key))
        if value is not None:
            return model.model_validate(value)
        pause_key = f"{key}-{attempt}"
        if attempt == 0:
            markdown = f"## {title}\n\n{description}\n"
            create_markdown_artifact(key=artifact_key("waiting", key), markdown=markdown, description=title)
            get_run_logger().info("Waiting for another flow: %s (%s)", title, run_link())
            notify_in_slack(notify, waiting_notice(title))
        if _in_deployment():
            suspend_flow_run(key=pause_key, timeout=None)
        else:
            _pause_for_signal(key, pause_key)
    raise AssertionError("unreachable")


def _pause_for_signal(key: str, pause_key: str) -> None:
    """In-process: pause (without a form) until `send_signal` or a person resumes the run."""
    context = FlowRunContext.get()
    poll_seconds = wait_settings().poll_seconds
    with get_client(sync_client=True) as client:
        state = propose_state_sync(
            client=client, state=Paused(pause_key=pause_key), flow_run_id=context.flow_run.id
        )
        while state.is_paused():
            time.sleep(poll_seconds)
            state = client.read_flow_run(context.flow_run.id).state
        if state.is_final():
            raise RuntimeError(f"the run was {state.type.value.lower()} while waiting for another flow")


def ends_on_rejection(flow_fn):
    """Turn a rejection at any gate into a Cancelled run whose message gives who and why."""

    @functools.wraps(flow_fn)
    def wrapper(*args, **kwargs):
        try:
            return flow_fn(*args, **kwargs)
        except Rejected as rejected:
            get_run_logger().warning("Stopping: %s", rejected)
            return Cancelled(message=str(rejected))

    return wrapper
