"""`/slack/actions`: answer approval gates from Slack (the buttons are tasks/gate_buttons.py): the web app's
interactivity endpoint that verifies each click and resumes the run with the clicking user as approver.

Every request is checked with the app's signing secret (`v0` HMAC over timestamp and raw body,
at most 5 minutes old, never twice) and, when the workspace block names its team, must come from that
Slack workspace. Slack gets its answer at once; the work happens after it, and a click that cannot be
used (already answered, not allowed, unknown run, Slack refusing a call) gets a one-line ephemeral
reply. A Reject click opens the reason form first (its trigger is good for 3 s); everything is checked
when the form is submitted. The app keeps no store of its own: the run's state and run inputs in
Prefect say what is answered.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.flow_runs import NotPausedError, resume_flow_run
from prefect.input.actions import read_flow_run_input
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from blocks.slack import SlackWorkspace
from tasks.contracts import INTEGRATION_ON_FORM, answer_keysets, click_answer, slack_form_of
from tasks.gate_buttons import APPROVE, REJECT
from tasks.slack_fit import SECTION_LIMIT, fit_text
from tasks.templating import slack_text

REJECT_VIEW = "gate-reject-reason"
REASON_LIMIT = 500  # characters of a reject reason: it goes on the run and into the notice
METADATA_LIMIT = 3000  # Slack refuses a view whose private_metadata is longer
MAX_AGE_SECONDS = 300  # Slack's advice, and SignatureVerifier's check
MAX_BODY_BYTES = 1024 * 1024  # an interaction payload is a few kB


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}


class Refused(Exception):
    """A click that must change nothing; the message goes back to the clicker only."""


@dataclass(frozen=True)
class Click:
    """Which gate of which run, who clicked, and where the notice is (to update or reply to it)."""

    run: str
    gate: str
    form: str
    user_id: str
    channel_id: str
    message_ts: str
    text: str

    @classmethod
    def from_block_actions(cls, payload: dict) -> Click:
        value = json.loads(payload["actions"][0]["value"])
        container = payload.get("container") or {}
        return cls(
            value["run"],
            value["gate"],
            value["form"],
            payload["user"]["id"],
            container.get("channel_id") or (payload.get("channel") or {}).get("id", ""),
            container.get("message_ts", ""),
            (payload.get("message") or {}).get("text", ""),
        )


class SlackActions:
    """The interactivity endpoint of one Slack app (one workspace block)."""

    def __init__(self, workspace: SlackWorkspace, ready_timeout: float = 10):
        if workspace.signing_secret is None:
            raise ValueError("the Slack Workspace block has no signing_secret")
        self.workspace = workspace
        self.verifier = SignatureVerifier(workspace.signing_secret.get_secret_value())
        self.client = workspace.get_client()
        self.ready_timeout = ready_timeout
        self._seen: dict[str, float] = {}  # signatures of accepted requests, for 5 minutes
        self._lock = threading.Lock()
        self._run_locks: dict[str, threading.Lock] = {}

    def routes(self) -> list[Route]:
        return [Route("/slack/actions", self.endpoint, methods=["POST"])]

    # --- the request --------------------------------------------------------------------------------
    def check_headers(self, headers) -> str | None:
        """Why this request cannot be from Slack, judged on its headers alone (before reading its body)."""
        timestamp = headers.get("x-slack-request-timestamp", "")
        signature = headers.get("x-slack-signature", "")
        if not timestamp or not signature.startswith("v0="):
            return "unsigned request"
        try:
            age = abs(time.time() - int(timestamp))
        except ValueError:
            return "bad timestamp"
        if age > MAX_AGE_SECONDS:
            return "stale request (timestamp older than 5 minutes)"
        return None

    def check_signature(self, body: bytes, headers) -> str | None:
        """Why this request is not from Slack (or not new), or None when it is."""
        problem = self.check_headers(headers)
        if problem:
            return problem
        timestamp = headers.get("x-slack-request-timestamp", "")
        signature = headers.get("x-slack-signature", "")
        if not self.verifier.is_valid(body, timestamp, signature):
            return "bad signature"
        with self._lock:
            now = time.time()
            self._seen = {s: t for s, t in self._seen.items() if now - t <= MAX_AGE_SECONDS}
            if signature in self._seen:
                return "replayed request"
            self._seen[signature] = now
        return None

    async def endpoint(self, request: Request) -> Response:
        """Answer Slack at once (it gives up after 3 s); do the work after the answer went out.

        The headers are checked before the body is read, and at most MAX_BODY_BYTES of it are read."""
        problem = self.check_headers(request.headers)
        if problem:
            return PlainTextResponse(f"refused: {problem}", status_code=401)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return PlainTextResponse(
                    f"refused: the request body is larger than {MAX_BODY_BYTES:,} bytes",
                    status_code=413,
                    headers={"Connection": "close"},
                )
        problem = self.check_signature(body, request.headers)
        if problem:
            return PlainTextResponse(f"refused: {problem}", status_code=401)
        try:
            payload = json.loads(parse_qs(body.decode())["payload"][0])
            kind = payload["type"]
        except (KeyError, IndexError, ValueError, UnicodeDecodeError, TypeError):
            return PlainTextResponse("refused: not an interaction payload", status_code=400)
        problem = self.check_team(payload)
        if problem:
            return PlainTextResponse(f"refused: {problem}", status_code=403)
        if kind == "block_actions":
            action = (payload.get("actions") or [{}])[0].get("action_id")
            if action in (APPROVE, REJECT):
                return Response(status_code=200, background=BackgroundTask(self.on_click, payload))
        if kind == "view_submission" and payload.get("view", {}).get("callback_id") == REJECT_VIEW:
            reason = _reason(payload["view"]).strip()
            if not reason:
                return JSONResponse(
                    {"response_action": "errors", "errors": {"reason": "Say why, so the run records it."}}
                )
            if len(reason) > REASON_LIMIT:
                too_long = f"At most {REASON_LIMIT} characters (this is {len(reason)}): say it shorter."
                return JSONResponse({"response_action": "errors", "errors": {"reason": too_long}})
            return Response(status_code=200, background=BackgroundTask(self.on_reason, payload, reason))
        return Response(status_code=200)

    def check_team(self, payload: dict) -> str | None:
        """Why this interaction is not from the configured workspace (None: it is, or none is set)."""
        expected = self.workspace.team_id
        if not expected:
            return None
        team = (payload.get("team") or {}).get("id") or (payload.get("user") or {}).get("team_id")
        if team != expected:
            return "this click comes from another Slack workspace than the one configured"
        return None

    # --- the work, after Slack has its answer ---------------------------------------------------------
    def on_click(self, payload: dict) -> None:
        try:
            click = Click.from_block_actions(payload)
        except (KeyError, ValueError, TypeError):
            return
        try:
            if payload["actions"][0]["action_id"] == REJECT:
                # first, while the click's trigger is good (3 s); the reason's submit checks the rest
                self.client.views_open(trigger_id=payload.get("trigger_id", ""), view=_reason_view(click))
                return
            with self._run_lock(click.run):
                self.answer(click, self.check(click), "approve")
        except Refused as refusal:
            self.tell(click, str(refusal))
        except SlackApiError as exc:
            self.tell(click, f"Slack refused {_what(exc)} ({_code(exc)}): nothing was changed; click again.")

    def on_reason(self, payload: dict, reason: str) -> None:
        try:
            click = Click(**json.loads(payload["view"]["private_metadata"]), user_id=payload["user"]["id"])
        except (KeyError, ValueError, TypeError):
            return
        try:
            with self._run_lock(click.run):
                self.answer(click, self.check(click), "reject", reason)
        except Refused as refusal:
            self.tell(click, str(refusal))
        except SlackApiError as exc:
            self.tell(click, f"Slack refused {_what(exc)} ({_code(exc)}): nothing was changed.")

    def _run_lock(self, flow_run_id: str) -> threading.Lock:
        """One decision at a time per run: a second click then sees the first one's answer, and cannot
        land on the run's next gate by resuming after the run moved on."""
        with self._lock:
            return self._run_locks.setdefault(flow_run_id, threading.Lock())

    def check(self, click: Click) -> str:
        """The clicker's verified email, once they may answer and the run waits at that gate."""
        email = self.email_of(click.user_id)
        with get_client(sync_client=True) as client:
            try:
                run = client.read_flow_run(click.run)
            except (ObjectNotFound, ValueError):
                raise Refused("This run does not exist (any more): nothing was changed.") from None
        allowed = allowed_approvers(run.parameters) | set(self.workspace.approvers)
        if email.lower() not in allowed:
            raise Refused(
                f"Only this customer's CSM or implementation manager (or the approvers set in the Slack "
                f"Workspace block) can answer here; {email} is not one of them. Nothing was changed."
            )
        self.wait_until_waiting(click)
        return email

    def wait_until_waiting(self, click: Click) -> None:
        """The notice goes out a moment before the run suspends: wait for the gate's form, or refuse."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            with get_client(sync_client=True) as client:
                run = client.read_flow_run(click.run)
            state = run.state
            if _answered(click):
                raise Refused("This was already answered: nothing was changed.")
            if state and state.is_final():
                raise Refused(f"This run is already {state.type.value.lower()}: nothing was changed.")
            details = state.state_details if state else None
            if state and state.is_paused() and details.pause_key == click.gate and details.run_input_keyset:
                if read_flow_run_input(details.run_input_keyset["schema"], flow_run_id=run.id) is not None:
                    return
            if time.monotonic() > deadline:
                raise Refused("This run is not waiting for that answer now: nothing was changed.")
            time.sleep(0.3)

    def answer(self, click: Click, email: str, decision: str, reason: str = "") -> None:
        """Resume the run as the UI form does; Prefect accepts only the first answer to a gate."""
        who = f"{email} (verified in Slack)"
        answer = click_answer(slack_form_of(click.form) or "", who, decision, reason)
        try:
            resume_flow_run(click.run, run_input=answer)
        except (NotPausedError, RuntimeError):
            raise Refused("This was already answered: nothing was changed.") from None
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        done = {"approve": "✅ Approved", "reject": "❌ Rejected"}[decision]
        if slack_form_of(click.form) == INTEGRATION_ON_FORM:
            done = "✅ Confirmed"
        outcome = f"{done} by {slack_text(email)} at {when}" + (f": {slack_text(reason)}" if reason else "")
        try:
            self.client.chat_update(
                channel=click.channel_id,
                ts=click.message_ts,
                text=f"{click.text}\n{outcome}",
                blocks=[
                    {
                        "type": "section",
                        "text": {"type": "mrkdwn", "text": fit_text(click.text or " ", SECTION_LIMIT)},
                    },
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": outcome}]},
                ],
            )
        except SlackApiError as exc:  # the decision stands; the notice keeps its buttons, which now refuse
            self.tell(
                click,
                f"{done} and recorded on the run, but Slack refused to update the notice ({_code(exc)}).",
            )

    def email_of(self, user_id: str) -> str:
        try:
            profile = self.client.users_info(user=user_id)["user"].get("profile") or {}
        except SlackApiError:
            profile = {}
        if not profile.get("email"):
            raise Refused("Your Slack account's email could not be read, so you cannot answer from Slack.")
        return profile["email"]

    def tell(self, click: Click, text: str) -> None:
        """An ephemeral reply: only the clicker sees it."""
        try:
            self.client.chat_postEphemeral(channel=click.channel_id, user=click.user_id, text=text)
        except SlackApiError:
            pass


def routes_from_block(workspace: SlackWorkspace | None) -> list[Route]:
    """`/slack/actions` when the Slack app has a signing secret; nothing to mount otherwise."""
    if workspace is None or workspace.signing_secret is None:
        return []
    return SlackActions(workspace).routes()


def allowed_approvers(parameters: dict) -> set[str]:
    """The customer's CSM and implementation manager, from the run's own parameters."""
    customer = parameters.get("customer")
    if customer is None and parameters.get("customer_key"):
        from tasks.registry import registration

        reg = registration(parameters["customer_key"])
        customer = reg.customer.model_dump() if reg else None
    people = [(customer or {}).get(role) or {} for role in ("csm", "implementation_manager")]
    return {p["email"].lower() for p in people if p.get("email")}


def _answered(click: Click) -> bool:
    return any(
        read_flow_run_input(keyset["response"], flow_run_id=click.run) is not None
        for keyset in answer_keysets(click.gate)
    )


def _what(exc: SlackApiError) -> str:
    """The Slack method that refused ("views.open"), from the answer's URL."""
    url = getattr(exc.response, "api_url", "") or ""
    return url.rstrip("/").rsplit("/", 1)[-1] or "a call"


def _code(exc: SlackApiError) -> str:
    return str(exc.response.get("error", "error")) if exc.response is not None else "no answer"


def _metadata(click: Click) -> str:
    """Where the reason goes (run, gate, notice), in at most METADATA_LIMIT characters as Slack counts
    them: the notice's text (to show it again with the outcome) is cut to what is left."""
    metadata = {k: v for k, v in click.__dict__.items() if k != "user_id"} | {"text": ""}
    room = METADATA_LIMIT - len(json.dumps(metadata, ensure_ascii=False))
    text = click.text
    while len(json.dumps(text, ensure_ascii=False)) - 2 > room:
        text = text[: max(0, len(text) - max(1, len(text) // 10) - 1)] + "…"
        if len(text) <= 1:
            text = ""
            break
    return json.dumps(metadata | {"text": text}, ensure_ascii=False)


def _reason_view(click: Click) -> dict:
    return {
        "type": "modal",
        "callback_id": REJECT_VIEW,
        "private_metadata": _metadata(click),
        "title": _plain("Reject"),
        "submit": _plain("Reject"),
        "close": _plain("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": _plain("Why? (recorded on the run)"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "reason",
                    "multiline": True,
                    "max_length": REASON_LIMIT,
                },
            }
        ],
    }


def _reason(view: dict) -> str:
    return ((view.get("state") or {}).get("values") or {}).get("reason", {}).get("reason", {}).get(
        "value"
    ) or ""
