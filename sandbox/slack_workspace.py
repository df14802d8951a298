"""The Slack stand-in's workspace: its ids, channels and DMs with their messages (each also appended to
`messages.jsonl` under `log_dir`, what `make up` shows), users by email, uploaded files and the
channel each incoming webhook posts into."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

BOT_USER = "UBOT0001"
TEAM_ID = "T0SANDBOX"


@dataclass
class Channel:
    id: str
    name: str
    bot_is_member: bool = True
    messages: list[dict] = field(default_factory=list)


class Workspace:
    """What the stand-in keeps, and the state helpers tests and `make up` call; `url` is the stand-in's."""

    url: str

    def _open_workspace(self, log_dir: Path | None) -> None:
        self.log_dir = log_dir
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, str] = {}  # email -> user id
        self.files: dict[str, dict] = {}
        self.webhooks: dict[str, str] = {}  # incoming-webhook path -> channel name
        self._ids = itertools.count(1)

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
