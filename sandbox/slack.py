"""Slack Web API stand-in: channels with paging, messages, permalinks, the three-call file upload,
DMs by email, `ok: false` errors and 429s with Retry-After, and incoming webhooks (a URL bound to one
channel, as Slack's `https://hooks.slack.com/services/T…/B…/…`). It records everything it receives.

It refuses what real Slack refuses: a section's text over 3,000 characters, a header's over 150,
more than 50 blocks, a button value over 2,000 (`invalid_blocks`); top-level text over 40,000
(`msg_too_long`); a view's `private_metadata` over 3,000 (`invalid_arguments`); a `trigger_id` used
more than 3 s after its click (`expired_trigger_id`); and chat.postMessage faster than about one a
second per channel (429 with Retry-After; a short burst of `post_burst` passes, as on Slack)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import math
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from sandbox.http import Request, Response, StandIn

BOT_USER = "UBOT0001"
TEAM_ID = "T0SANDBOX"

# Slack's published limits (api.slack.com/reference/block-kit, chat.postMessage, views.open)
TEXT_LIMIT = 40_000
SECTION_TEXT_LIMIT = 3_000
HEADER_TEXT_LIMIT = 150
MESSAGE_BLOCKS_LIMIT = 50
BUTTON_VALUE_LIMIT = 2_000
PRIVATE_METADATA_LIMIT = 3_000
TRIGGER_SECONDS = 3.0


def blocks_problem(blocks: object) -> str | None:
    """Why Slack would refuse these message blocks (`invalid_blocks`), or None."""
    if blocks is None:
        return None
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return "blocks are not JSON"
    if not isinstance(blocks, list):
        return "blocks must be a list"
    if len(blocks) > MESSAGE_BLOCKS_LIMIT:
        return f"no more than {MESSAGE_BLOCKS_LIMIT} items allowed [json-pointer:/blocks]"
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        text = (block.get("text") or {}).get("text", "") if isinstance(block, dict) else ""
        if kind == "section" and len(text) > SECTION_TEXT_LIMIT:
            return f"must be less than {SECTION_TEXT_LIMIT + 1} characters [json-pointer:/blocks/{i}/text]"
        if kind == "header" and len(text) > HEADER_TEXT_LIMIT:
            return f"must be less than {HEADER_TEXT_LIMIT + 1} characters [json-pointer:/blocks/{i}/text]"
        if kind == "context":
            for j, element in enumerate(block.get("elements") or []):
                if len(element.get("text") or "") > SECTION_TEXT_LIMIT:
                    return f"must be less than 3001 characters [json-pointer:/blocks/{i}/elements/{j}/text]"
        for j, element in enumerate(block.get("elements") or [] if kind == "actions" else []):
            if len(element.get("value") or "") > BUTTON_VALUE_LIMIT:
                return f"must be less than 2001 characters [json-pointer:/blocks/{i}/elements/{j}/value]"
    return None


def view_problem(view: object) -> str | None:
    """Why Slack would refuse this view (`invalid_arguments`), or None."""
    if not isinstance(view, dict):
        return "view must be an object"
    if len(view.get("private_metadata") or "") > PRIVATE_METADATA_LIMIT:
        return f"must be less than {PRIVATE_METADATA_LIMIT + 1} characters [json-pointer:/private_metadata]"
    return None


@dataclass
class Channel:
    id: str
    name: str
    bot_is_member: bool = True
    messages: list[dict] = field(default_factory=list)


class _Interactivity:
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
            return _error("user_not_found")
        return _ok(user={"id": user, "name": email.split("@")[0], "profile": {"email": email}})

    def _chat_update(self, request: Request) -> Response:
        channel = self._find(request.params.get("channel"))
        ts = request.params.get("ts", "")
        message = next((m for m in channel.messages if m["ts"] == ts), None) if channel else None
        if message is None:
            return _error("message_not_found")
        blocks = request.json.get("blocks") if isinstance(request.json, dict) else None
        refused = self._message_problem("chat.update", request.params.get("text") or "", blocks)
        if refused:
            return refused
        message.update(text=request.params.get("text") or message["text"], blocks=blocks)
        self.updates.append({"channel": channel.id, "ts": ts, "text": message["text"], "blocks": blocks})
        return _ok(channel=channel.id, ts=ts)

    def _post_ephemeral(self, request: Request) -> Response:
        if self._find(request.params.get("channel")) is None:
            return _error("channel_not_found")
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
        return _ok(message_ts=f"{time.time():.6f}")

    def _views_open(self, request: Request) -> Response:
        trigger = request.params.get("trigger_id", "")
        opened = next((v for v in self.views.values() if v["trigger_id"] == trigger), None)
        if opened is None or opened["view"] is not None:
            return _error("invalid_trigger_id")  # unknown, or used already (a trigger opens one view)
        if time.monotonic() - opened["clicked"] > self.trigger_seconds:
            self.refused.append(("views.open", "expired_trigger_id"))
            return _error("expired_trigger_id")
        return self._checked_view("views.open", request, opened)

    def _views_update(self, request: Request) -> Response:
        opened = self.views.get(request.params.get("view_id", ""))
        if opened is None or opened["view"] is None:
            return _error("not_found")
        return self._checked_view("views.update", request, opened)

    def _checked_view(self, method: str, request: Request, opened: dict) -> Response:
        """The request's view stored in `opened` if Slack would take it; else refused and recorded."""
        view = request.json.get("view") if isinstance(request.json, dict) else None
        if isinstance(view, str):
            view = json.loads(view)
        problem = view_problem(view)
        if problem:
            self.refused.append((method, problem))
            return _error("invalid_arguments", problem)
        opened["view"] = view
        return _ok(view={"id": opened["id"], **view})

    def _message_problem(self, method: str, text: str, blocks: object) -> Response | None:
        """Slack's answer to a message over its limits, or None when it fits."""
        if len(text) > TEXT_LIMIT:
            self.refused.append((method, "msg_too_long"))
            return _error("msg_too_long")
        problem = blocks_problem(blocks)
        if problem:
            self.refused.append((method, problem))
            return _error("invalid_blocks", problem)
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


class SlackStandIn(StandIn, _Interactivity):
    name = "slack"

    def __init__(
        self,
        token: str = "xoxb-sandbox",
        log_dir: Path | None = None,
        page_size: int = 2,
        post_interval: float = 1.0,
        post_burst: int = 3,
        trigger_seconds: float = TRIGGER_SECONDS,
    ):
        self.token = token
        self.page_size = page_size
        # chat.postMessage per channel: a bucket of `post_burst` posts, one back every `post_interval` s
        self.post_interval, self.post_burst = post_interval, post_burst
        self._post_budget: dict[str, tuple[float, float]] = {}  # channel id -> (posts left, when)
        self.trigger_seconds = trigger_seconds
        self.log_dir = log_dir
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, str] = {}  # email -> user id
        self.files: dict[str, dict] = {}
        self.webhooks: dict[str, str] = {}  # incoming-webhook path -> channel name
        self._ids = itertools.count(1)
        super().__init__()

    def incoming_webhook(self, channel: str, path: str | None = None) -> str:
        """An incoming-webhook URL that posts into `channel` (Slack binds each webhook to one channel)."""
        secret = hashlib.sha256(channel.encode()).hexdigest()[:24]
        path = path or f"/services/T0SANDBOX/B{next(self._ids):08d}/{secret}"
        self.webhooks[path] = channel.lstrip("#")
        return f"{self.url}{path}"

    # --- state helpers for tests and make up ----------------------------------------------------
    def add_channel(self, name: str, bot_is_member: bool = True) -> Channel:
        channel = Channel(id=f"C{next(self._ids):08d}", name=name.lstrip("#"), bot_is_member=bot_is_member)
        self.channels[channel.id] = channel
        return channel

    def add_user(self, email: str) -> str:
        self.users[email.lower()] = user_id = f"U{next(self._ids):08d}"
        return user_id

    def channel(self, name: str) -> Channel | None:
        return next((c for c in self.channels.values() if c.name == name.lstrip("#")), None)

    def messages(self, name: str) -> list[dict]:
        """What was posted in a channel or DM, oldest first; nothing yet if it was never opened."""
        channel = self.channel(name)
        return list(channel.messages) if channel else []

    # --- the Web API ------------------------------------------------------------------------------
    def setup(self) -> None:
        for method, handler in {
            "auth.test": self._auth_test,
            "conversations.list": self._conversations_list,
            "chat.postMessage": self._post_message,
            "chat.getPermalink": self._permalink,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "users.lookupByEmail": self._lookup_by_email,
            "conversations.open": self._open_dm,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
        }.items():
            self.route("POST", f"/api/{method}", self._authed(handler))
            self.route("GET", f"/api/{method}", self._authed(handler))  # the SDK reads history by GET
        self.route("POST", r"/upload/(?P<file_id>F\w+)", self._receive_upload)
        self.route("POST", r"/services/[\w/]+", self._incoming_webhook)
        self._interactive_routes()

    def _incoming_webhook(self, request: Request) -> Response:
        """Slack's incoming webhook: JSON `{"text": …}` (or blocks) into the webhook's channel; answers
        `ok` as plain text, or Slack's errors (`no_service`, `invalid_payload`, `no_text`)."""
        channel = self.channel(self.webhooks.get(request.path.rstrip("/"), ""))
        if channel is None:
            return Response(404, b"no_service", content_type="text/plain")
        body = request.json
        if not isinstance(body, dict):
            return Response(400, b"invalid_payload", content_type="text/plain")
        if not body.get("text") and not body.get("blocks"):
            return Response(400, b"no_text", content_type="text/plain")
        self._record(
            channel, {"text": body.get("text") or "", "blocks": body.get("blocks"), "via": "webhook"}
        )
        return Response(200, b"ok", content_type="text/plain")

    def _authed(self, handler):
        def wrapped(request: Request) -> Response:
            token = request.bearer or request.params.get("token")
            if token != self.token:
                return _error("invalid_auth")
            return handler(request)

        return wrapped

    def _auth_test(self, request: Request) -> Response:
        return _ok(user_id=BOT_USER, team="sandbox", team_id=TEAM_ID, url="https://sandbox.slack.example/")

    def _conversations_list(self, request: Request) -> Response:
        channels = sorted(self.channels.values(), key=lambda c: c.id)
        start = int(request.params.get("cursor") or 0)
        limit = min(int(request.params.get("limit") or self.page_size), self.page_size)
        page = channels[start : start + limit]
        next_cursor = str(start + limit) if start + limit < len(channels) else ""
        return _ok(
            channels=[
                {"id": c.id, "name": c.name, "is_member": c.bot_is_member, "is_channel": True} for c in page
            ],
            response_metadata={"next_cursor": next_cursor},
        )

    def _find(self, ref: str | None) -> Channel | None:
        if not ref:
            return None
        return self.channels.get(ref) or next(
            (c for c in self.channels.values() if c.name == ref.lstrip("#")), None
        )

    def _record(self, channel: Channel, message: dict) -> dict:
        message = {"ts": f"{time.time():.6f}", **message}
        channel.messages.append(message)
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with open(self.log_dir / "messages.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"channel": f"#{channel.name}", **message}) + "\n")
        return message

    def _post_message(self, request: Request) -> Response:
        channel = self._find(request.params.get("channel"))
        if channel is None:
            return _error("channel_not_found")
        if not channel.bot_is_member:
            return _error("not_in_channel")
        text = request.params.get("text") or ""
        blocks = (request.json or {}).get("blocks") if isinstance(request.json, dict) else None
        if not text and not blocks:
            return _error("no_text")
        refused = self._message_problem("chat.postMessage", text, blocks)
        if refused:
            return refused
        wait = self._rate_limited(channel.id)
        if wait:
            self.refused.append(("chat.postMessage", "ratelimited"))
            return rate_limited(wait)
        body = request.json if isinstance(request.json, dict) else {}
        message = {"text": text, "blocks": blocks, "user": BOT_USER}
        if body.get("metadata"):
            message["metadata"] = body["metadata"]
        if request.params.get("thread_ts"):
            message["thread_ts"] = request.params["thread_ts"]
        message = self._record(channel, message)
        return _ok(channel=channel.id, ts=message["ts"], message=message)

    def _rate_limited(self, channel_id: str) -> int:
        """0 when a post may go into the channel now (and count it), else Retry-After in seconds."""
        if not self.post_interval:
            return 0
        with self.lock:
            now = time.monotonic()
            left, when = self._post_budget.get(channel_id, (float(self.post_burst), now))
            left = min(float(self.post_burst), left + (now - when) / self.post_interval)
            if left < 1:
                self._post_budget[channel_id] = (left, now)
                return max(1, math.ceil((1 - left) * self.post_interval))
            self._post_budget[channel_id] = (left - 1, now)
            return 0

    def _readable(self, request: Request) -> tuple[Channel | None, Response | None]:
        channel = self._find(request.params.get("channel"))
        if channel is None:
            return None, _error("channel_not_found")
        if not channel.bot_is_member:
            return None, _error("not_in_channel")
        return channel, None

    def _shown(self, request: Request, messages: list[dict]) -> Response:
        """One page of the messages after `oldest`, newest first, with metadata only when asked for;
        `limit` per page (Slack's default 100) and `response_metadata.next_cursor` as Slack pages."""
        oldest = float(request.params.get("oldest") or 0)
        with_metadata = request.params.get("include_all_metadata", "").lower() in ("1", "true")
        shown = [m for m in reversed(messages) if float(m["ts"]) > oldest]
        start = int(request.params.get("cursor") or 0)
        limit = min(int(request.params.get("limit") or 100), 999)
        page = [
            m if with_metadata else {k: v for k, v in m.items() if k != "metadata"}
            for m in shown[start : start + limit]
        ]
        more = start + limit < len(shown)
        return _ok(
            messages=page,
            has_more=more,
            response_metadata={"next_cursor": str(start + limit) if more else ""},
        )

    def _history(self, request: Request) -> Response:
        channel, error = self._readable(request)
        if error:
            return error
        return self._shown(request, [m for m in channel.messages if m.get("thread_ts", m["ts"]) == m["ts"]])

    def _replies(self, request: Request) -> Response:
        channel, error = self._readable(request)
        if error:
            return error
        ts = request.params.get("ts", "")
        thread = [m for m in channel.messages if m["ts"] == ts or m.get("thread_ts") == ts]
        if not thread:
            return _error("thread_not_found")
        return self._shown(request, thread)

    def _permalink(self, request: Request) -> Response:
        channel = self._find(request.params.get("channel"))
        ts = request.params.get("message_ts", "")
        if channel is None or not any(m["ts"] == ts for m in channel.messages):
            return _error("message_not_found")
        return _ok(permalink=f"https://sandbox.slack.example/archives/{channel.id}/p{ts.replace('.', '')}")

    def _upload_url(self, request: Request) -> Response:
        filename, length = request.params.get("filename"), request.params.get("length")
        if not filename or not length:
            return _error("invalid_arguments")
        file_id = f"F{next(self._ids):08d}"
        self.files[file_id] = {"id": file_id, "name": filename, "length": int(length), "content": None}
        return _ok(upload_url=f"{self.url}/upload/{file_id}", file_id=file_id)

    def _receive_upload(self, request: Request) -> Response:
        file = self.files.get(request.match["file_id"])
        if file is None:
            return Response(404, b"unknown upload", content_type="text/plain")
        file["content"] = request.body
        return Response(200, b"OK - " + str(len(request.body)).encode(), content_type="text/plain")

    def _complete_upload(self, request: Request) -> Response:
        listed = json.loads(request.params.get("files") or "[]")
        channel = self._find(request.params.get("channel_id"))
        if request.params.get("channel_id") and channel is None:
            return _error("channel_not_found")
        if channel is not None and not channel.bot_is_member:
            return _error("not_in_channel")
        shared = []
        for item in listed:
            file = self.files.get(item.get("id"))
            if file is None or file["content"] is None or len(file["content"]) != file["length"]:
                return _error("file_upload_incomplete")
            file["title"] = item.get("title") or file["name"]
            shared.append({"id": file["id"], "name": file["name"], "title": file["title"]})
        if channel is not None:
            message = {"text": request.params.get("initial_comment") or "", "files": shared, "user": BOT_USER}
            if request.params.get("thread_ts"):
                message["thread_ts"] = request.params["thread_ts"]
            self._record(channel, message)
        return _ok(files=shared)

    def _lookup_by_email(self, request: Request) -> Response:
        user = self.users.get((request.params.get("email") or "").lower())
        return _ok(user={"id": user}) if user else _error("users_not_found")

    def _open_dm(self, request: Request) -> Response:
        user = request.params.get("users", "")
        if user not in self.users.values():
            return _error("user_not_found")
        name = f"dm-{user.lower()}"
        channel = self._find(name) or self.add_channel(name)
        return _ok(channel={"id": channel.id})


def _ok(**data) -> Response:
    return Response(200, {"ok": True, **data})


def _error(code: str, detail: str | None = None) -> Response:
    body: dict = {"ok": False, "error": code}
    if detail:
        body["response_metadata"] = {"messages": [f"[ERROR] {detail}"]}
    return Response(200, body)


def rate_limited(retry_after: int = 1) -> Response:
    return Response(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": str(retry_after)})
