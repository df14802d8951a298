"""Slack Web API stand-in: channels with paging, messages, permalinks, the three-call file upload,
DMs by email, `ok: false` errors and 429s with Retry-After, and incoming webhooks (a URL bound to one
channel, as Slack's `https://hooks.slack.com/services/T…/B…/…`). It records everything it receives.

It refuses what real Slack refuses: a section's text over 3,000 characters, a header's over 150,
more than 50 blocks, a button value over 2,000 (`invalid_blocks`); top-level text over 40,000
(`msg_too_long`); a view's `private_metadata` over 3,000 (`invalid_arguments`); a `trigger_id` used
more than 3 s after its click (`expired_trigger_id`); and chat.postMessage faster than about one a
second per channel (429 with Retry-After; a short burst of `post_burst` passes, as on Slack).

Here the Web API routes; what it keeps is in `slack_workspace.py`, its replies and limits in
`slack_replies.py`, clicks and modals in `slack_interactive.py`."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from sandbox.http import Request, Response, StandIn
from sandbox.slack_interactive import Interactivity
from sandbox.slack_replies import TRIGGER_SECONDS, error_reply, ok_reply, rate_limited
from sandbox.slack_workspace import BOT_USER, TEAM_ID, Channel, Workspace


class SlackStandIn(StandIn, Workspace, Interactivity):
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
        self._open_workspace(log_dir)
        super().__init__()

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
                return error_reply("invalid_auth")
            return handler(request)

        return wrapped

    def _auth_test(self, request: Request) -> Response:
        return ok_reply(
            user_id=BOT_USER, team="sandbox", team_id=TEAM_ID, url="https://sandbox.slack.example/"
        )

    def _conversations_list(self, request: Request) -> Response:
        channels = sorted(self.channels.values(), key=lambda c: c.id)
        start = int(request.params.get("cursor") or 0)
        limit = min(int(request.params.get("limit") or self.page_size), self.page_size)
        page = channels[start : start + limit]
        next_cursor = str(start + limit) if start + limit < len(channels) else ""
        return ok_reply(
            channels=[
                {"id": c.id, "name": c.name, "is_member": c.bot_is_member, "is_channel": True} for c in page
            ],
            response_metadata={"next_cursor": next_cursor},
        )

    def _post_message(self, request: Request) -> Response:
        channel = self._find(request.params.get("channel"))
        if channel is None:
            return error_reply("channel_not_found")
        if not channel.bot_is_member:
            return error_reply("not_in_channel")
        text = request.params.get("text") or ""
        blocks = (request.json or {}).get("blocks") if isinstance(request.json, dict) else None
        if not text and not blocks:
            return error_reply("no_text")
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
        return ok_reply(channel=channel.id, ts=message["ts"], message=message)

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
            return None, error_reply("channel_not_found")
        if not channel.bot_is_member:
            return None, error_reply("not_in_channel")
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
        return ok_reply(
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
            return error_reply("thread_not_found")
        return self._shown(request, thread)

    def _permalink(self, request: Request) -> Response:
        channel = self._find(request.params.get("channel"))
        ts = request.params.get("message_ts", "")
        if channel is None or not any(m["ts"] == ts for m in channel.messages):
            return error_reply("message_not_found")
        return ok_reply(
            permalink=f"https://sandbox.slack.example/archives/{channel.id}/p{ts.replace('.', '')}"
        )

    def _upload_url(self, request: Request) -> Response:
        filename, length = request.params.get("filename"), request.params.get("length")
        if not filename or not length:
            return error_reply("invalid_arguments")
        file_id = f"F{next(self._ids):08d}"
        self.files[file_id] = {"id": file_id, "name": filename, "length": int(length), "content": None}
        return ok_reply(upload_url=f"{self.url}/upload/{file_id}", file_id=file_id)

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
            return error_reply("channel_not_found")
        if channel is not None and not channel.bot_is_member:
            return error_reply("not_in_channel")
        shared = []
        for item in listed:
            file = self.files.get(item.get("id"))
            if file is None or file["content"] is None or len(file["content"]) != file["length"]:
                return error_reply("file_upload_incomplete")
            file["title"] = item.get("title") or file["name"]
            shared.append({"id": file["id"], "name": file["name"], "title": file["title"]})
        if channel is not None:
            message = {"text": request.params.get("initial_comment") or "", "files": shared, "user": BOT_USER}
            if request.params.get("thread_ts"):
                message["thread_ts"] = request.params["thread_ts"]
            self._record(channel, message)
        return ok_reply(files=shared)

    def _lookup_by_email(self, request: Request) -> Response:
        user = self.users.get((request.params.get("email") or "").lower())
        return ok_reply(user={"id": user}) if user else error_reply("users_not_found")

    def _open_dm(self, request: Request) -> Response:
        user = request.params.get("users", "")
        if user not in self.users.values():
            return error_reply("user_not_found")
        name = f"dm-{user.lower()}"
        channel = self._find(name) or self.add_channel(name)
        return ok_reply(channel={"id": channel.id})
