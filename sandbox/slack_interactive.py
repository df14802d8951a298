"""Slack's side of interactivity in the stand-in: clicks and modal submissions sent signed to an app's
Request URL as Slack sends them, and the Web API methods an interactive app calls back."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

from sandbox.http import Request, Response
from sandbox.slack_replies import TEXT_LIMIT, blocks_problem, error_reply, ok_reply, view_problem
from sandbox.slack_workspace import TEAM_ID


class Interactivity:
    """Slack's side of interactivity: signed block_actions / view_submission payloads sent to an app's
    Request URL, and the Web API methods an interactive app calls back (users.info, chat.update,
    chat.postEphemeral, views.open), recorded for tests."""

    signing_secret = "sandbox-signing-secret"

    def _interactive_routes(self) -> None:
        self.updates: list[dict] = []
        self.ephemerals: list[dict] = []
        self.views: dict[str, dict] = {}
        self.interactions: list[tuple[str, bytes, dict]] = []  # what was sent: url, body, headers
        self.refused: list[tuple[str, str]] = []  # (method, error) of every call refused for a limit
        self.view_responses: list[dict] = []  # response_action answers to view submissions
        for method, handler in {
            "users.info": self._users_info,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._post_ephemeral,
            "views.open": self._views_open,
            "views.update": self._views_update,
        }.items():
            self.route("POST", f"/api/{method}", self._authed(handler))

    def _users_info(self, request: Request) -> Response:
        user = request.params.get("user", "")
        email = next((e for e, u in self.users.items() if u == user), None)
        if email is None:
            return error_reply("user_not_found")
        return ok_reply(user={"id": user, "name": email.split("@")[0], "profile": {"email": email}})

    def _chat_update(self, request: Request) -> Response:
        channel = self._find(request.params.get("channel"))
        ts = request.params.get("ts", "")
        message = next((m for m in channel.messages if m["ts"] == ts), None) if channel else None
        if message is None:
            return error_reply("message_not_found")
        blocks = request.json.get("blocks") if isinstance(request.json, dict) else None
        refused = self._message_problem("chat.update", request.params.get("text") or "", blocks)
        if refused:
            return refused
        message.update(text=request.params.get("text") or message["text"], blocks=blocks)
        self.updates.append({"channel": channel.id, "ts": ts, "text": message["text"], "blocks": blocks})
        return ok_reply(channel=channel.id, ts=ts)

    def _post_ephemeral(self, request: Request) -> Response:
        if self._find(request.params.get("channel")) is None:
            return error_reply("channel_not_found")
        refused = self._message_problem("chat.postEphemeral", request.params.get("text") or "", None)
        if refused:
            return refused
        self.ephemerals.append(
            {
                "channel": request.params["channel"],
                "user": request.params.get("user"),
                "text": request.params.get("text"),
            }
        )
        return ok_reply(message_ts=f"{time.time():.6f}")

    def _views_open(self, request: Request) -> Response:
        trigger = request.params.get("trigger_id", "")
        opened = next((v for v in self.views.values() if v["trigger_id"] == trigger), None)
        if opened is None or opened["view"] is not None:
            return error_reply("invalid_trigger_id")  # unknown, or used already (a trigger opens one view)
        if time.monotonic() - opened["clicked"] > self.trigger_seconds:
            self.refused.append(("views.open", "expired_trigger_id"))
            return error_reply("expired_trigger_id")
        return self._checked_view("views.open", request, opened)

    def _views_update(self, request: Request) -> Response:
        opened = self.views.get(request.params.get("view_id", ""))
        if opened is None or opened["view"] is None:
            return error_reply("not_found")
        return self._checked_view("views.update", request, opened)

    def _checked_view(self, method: str, request: Request, opened: dict) -> Response:
        """The request's view stored in `opened` if Slack would take it; else refused and recorded."""
        view = request.json.get("view") if isinstance(request.json, dict) else None
        if isinstance(view, str):
            view = json.loads(view)
        problem = view_problem(view)
        if problem:
            self.refused.append((method, problem))
            return error_reply("invalid_arguments", problem)
        opened["view"] = view
        return ok_reply(view={"id": opened["id"], **view})

    def _message_problem(self, method: str, text: str, blocks: object) -> Response | None:
        """Slack's answer to a message over its limits, or None when it fits."""
        if len(text) > TEXT_LIMIT:
            self.refused.append((method, "msg_too_long"))
            return error_reply("msg_too_long")
        problem = blocks_problem(blocks)
        if problem:
            self.refused.append((method, problem))
            return error_reply("invalid_blocks", problem)
        return None

    # --- sending interactions like Slack ----------------------------------------------------------
    def send_interaction(
        self,
        url: str,
        payload: dict,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        signed: bool = True,
    ) -> tuple[int, str]:
        """POST `payload=<json>` to the app's Request URL with Slack's v0 signature headers."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signed:
            stamp = str(int(time.time()) if timestamp is None else timestamp)
            base = b"v0:" + stamp.encode() + b":" + body
            digest = hmac.new((secret or self.signing_secret).encode(), base, hashlib.sha256).hexdigest()
            headers |= {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}
        self.interactions.append((url, body, headers))
        return _send(url, body, headers)

    def replay_last(self) -> tuple[int, str]:
        """Send the last interaction again, byte for byte (what an attacker who saw it could do)."""
        url, body, headers = self.interactions[-1]
        return _send(url, body, headers)

    def click(
        self,
        url: str,
        channel: str,
        email: str,
        action_id: str,
        message_index: int = -1,
        team: str = TEAM_ID,
        **options,
    ):
        """`email` clicks the button `action_id` on a message in a channel or DM (block_actions), from
        the workspace `team`; the click's trigger_id opens a view only within `trigger_seconds`."""
        found = self.channel(channel) or self._find(channel)
        message = found.messages[message_index]
        button = next(
            e
            for b in message.get("blocks") or []
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == action_id
        )
        user = self.users[email.lower()]
        trigger = f"{next(self._ids)}.{int(time.time())}.trigger"
        view_id = f"V{next(self._ids):08d}"
        self.views[view_id] = {
            "id": view_id,
            "trigger_id": trigger,
            "user": user,
            "view": None,
            "clicked": time.monotonic(),
            "team": team,
        }
        payload = {
            "type": "block_actions",
            "team": {"id": team, "domain": "sandbox"},
            "user": {"id": user, "username": email.split("@")[0], "team_id": team},
            "api_app_id": "A0SANDBOX",
            "trigger_id": trigger,
            "container": {
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": found.id,
                "is_ephemeral": False,
            },
            "channel": {"id": found.id, "name": found.name},
            "message": {
                "type": "message",
                "ts": message["ts"],
                "text": message["text"],
                "blocks": message["blocks"],
            },
            "response_url": f"{self.url}/response/{found.id}",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "gate",
                    "value": button["value"],
                    "text": button["text"],
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return self.send_interaction(url, payload, **options)

    def submit_view(self, url: str, view_id: str, email: str, values: dict[str, str], **options):
        """`email` submits an opened modal with these values (block id = action id = field)."""
        view = self.views[view_id]["view"]
        payload = {
            "type": "view_submission",
            "team": {"id": self.views[view_id]["team"], "domain": "sandbox"},
            "user": {"id": self.users[email.lower()], "username": email.split("@")[0]},
            "api_app_id": "A0SANDBOX",
            "trigger_id": f"{next(self._ids)}.{int(time.time())}.trigger",
            "view": {
                **view,
                "id": view_id,
                "state": {
                    "values": {k: {k: {"type": "plain_text_input", "value": v}} for k, v in values.items()}
                },
            },
        }
        status, body = self.send_interaction(url, payload, **options)
        try:
            answer = json.loads(body) if body else None
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("response_action"):
            self.view_responses.append(answer)
            if answer["response_action"] in ("update", "push"):
                problem = view_problem(answer.get("view"))
                if problem:  # Slack shows the person an error instead of the view
                    self.refused.append(("response_action", problem))
                    return 200, json.dumps({"ok": False, "error": "invalid_arguments"})
        return status, body

    def opened_views(self) -> list[dict]:
        return [v for v in self.views.values() if v["view"] is not None]


def _send(url: str, body: bytes, headers: dict) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
