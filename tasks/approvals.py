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
from prefect.client.schemas.actions import ArtifactCreate
from prefect.context import FlowRunContext
from prefect.exceptions import NotPausedError
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.input.actions import create_flow_run_input, read_flow_run_input
from prefect.settings import PREFECT_UI_URL
from prefect.states import Cancelled, Paused
from prefect.variables import Variable
from pydantic import BaseModel, Field, ValidationError, model_validator

from tasks.approval_notices import SECTION_LIMIT
from tasks.contracts import APPROVAL_FORM, answer_keyset, artifact_key, asked_again
from tasks.customer import describe_validation_error
from tasks.once import once_key, once_task
from tasks.private_apis import propose_state_sync
from tasks.templating import SlackText, render
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


class Notify(BaseModel):
    """Who to tell in Slack that a run waits for them: a DM to `email`, else a post in `channel`."""

    email: str | None = None
    channel: str | None = None


def _notify(notify: Notify | None, text: str, gate: tuple[str, str] | None = None) -> None:
    """Best effort: a Slack problem is logged, never fails the gate (the UI still shows the form).

    `gate` (gate key, the form's `slack_form`) adds Slack buttons that answer it, when the Slack app
    can receive clicks.
    """
    logger = get_run_logger()
    if notify is None or not (notify.email or notify.channel):
        return
    from blocks import BlockNotConfigured, SlackWorkspace, load_block
    from tasks.gate_buttons import gate_blocks
    from tasks.slack import Slack, SlackError

    try:
        slack = Slack(load_block(SlackWorkspace))
        clickable = gate is not None and slack.workspace.signing_secret is not None
        blocks = gate_blocks(text, current_run_id(), *gate) if clickable else None
        posted = slack.direct_message(notify.email, text, blocks) if notify.email else None
        if posted is None and notify.channel:
            posted = slack.post(notify.channel, text, blocks=blocks)
        if posted is not None:
            logger.info("Told %s in Slack", posted.channel)
    except (BlockNotConfigured, SlackError) as exc:
        logger.warning("Could not notify in Slack: %s", exc)
    except Exception as exc:  # Slack unreachable (URLError, timeouts…): the form still waits in the UI
        logger.warning("Could not notify in Slack (%s); the form waits in the Prefect UI", type(exc).__name__)


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


def current_run_id() -> str:
    """This flow run's id: part of the once-keys of per-run steps (answers, decisions)."""
    return str(FlowRunContext.get().flow_run.id)


def run_link(flow_run_id: UUID | str | None = None) -> str:
    """Where a person answers a run's form in the Prefect UI (this run's by default)."""
    context = FlowRunContext.get()
    if flow_run_id is None and context is not None:
        flow_run_id = context.flow_run.id
    base = (PREFECT_UI_URL.value() or "http://127.0.0.1:4200").rstrip("/")
    return f"{base}/runs/flow-run/{flow_run_id}" if flow_run_id else base


def _in_deployment() -> bool:
    context = FlowRunContext.get()
    return bool(context and context.flow_run and context.flow_run.deployment_id)


def send_reminder(
    flow_run_id: UUID, title: str, gate_key: str, waited_hours: float, notify: Notify | None
) -> None:
    """Tell the people who owe an answer that a run still waits: log, an artifact on that run, Slack.

    Used by a pausing run itself and by the `approval-reminders` sweeper for suspended runs.
    """
    message = f"Still waiting {waited_hours:.1f} h for: {title}."  # the artifact is on the run's own page
    get_run_logger().warning("%s (%s)", message, run_link(flow_run_id))
    _notify(
        notify,
        render("slack/reminder.md.j2", title=title, waited_hours=waited_hours, run_url=run_link(flow_run_id)),
    )
    with get_client(sync_client=True) as client:
        client.create_artifact(
            ArtifactCreate(
                key=artifact_key("reminder", gate_key),
                type="markdown",
                data=f"### Reminder\n\n{message}\n",
                description=title,
                flow_run_id=flow_run_id,
            )
        )


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


def masked(text: str, private: dict[str, str] | None) -> str:
    """`text` with each private value (a link someone could use) replaced by what is shown instead."""
    for value, shown in (private or {}).items():
        text = text.replace(value, shown)
    return SlackText(text) if isinstance(text, SlackText) else text


def waiting_notice(title: str, details: str = "") -> str:
    """A gate's Slack notice: the title, the run link and what is to be decided, or, when that does
    not fit in one Slack section, only the link to read it in Prefect."""
    text = render("slack/waiting.md.j2", title=title, run_url=run_link(), details=details)
    if len(text) <= SECTION_LIMIT:
        return text
    return render("slack/waiting.md.j2", title=title, run_url=run_link(), details="", too_long=True)


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
    _notify(notify, waiting_notice(title, masked(details, private)), buttons)
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
            _notify(notify, waiting_notice(title))
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
