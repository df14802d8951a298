"""Telling people that a run waits for them: the run's link, the Slack notice (with buttons when the
Slack app can receive clicks) and the reminders while it waits; approvals.py asks, waits and records."""

from __future__ import annotations

from uuid import UUID

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.context import FlowRunContext
from prefect.settings import PREFECT_UI_URL
from pydantic import BaseModel

from tasks.approval_notices import SECTION_LIMIT
from tasks.contracts import artifact_key
from tasks.templating import SlackText, render


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


class Notify(BaseModel):
    """Who to tell in Slack that a run waits for them: a DM to `email`, else a post in `channel`."""

    email: str | None = None
    channel: str | None = None


def notify_in_slack(notify: Notify | None, text: str, gate: tuple[str, str] | None = None) -> None:
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


def send_reminder(
    flow_run_id: UUID, title: str, gate_key: str, waited_hours: float, notify: Notify | None
) -> None:
    """Tell the people who owe an answer that a run still waits: log, an artifact on that run, Slack.

    Used by a pausing run itself and by the `approval-reminders` sweeper for suspended runs.
    """
    message = f"Still waiting {waited_hours:.1f} h for: {title}."  # the artifact is on the run's own page
    get_run_logger().warning("%s (%s)", message, run_link(flow_run_id))
    notify_in_slack(
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
