"""Posting to the 10KC Slack: messages, files and direct messages, with channels resolved once.

Slack errors become `SlackError` with one clear line (which channel, what is wrong, what to do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slack_sdk.errors import SlackApiError

from blocks.slack import SlackWorkspace


class SlackError(RuntimeError):
    """A Slack call failed for a reason a person has to fix (missing channel, bot not invited…)."""


@dataclass(frozen=True)
class PostedMessage:
    channel: str
    channel_id: str
    ts: str
    permalink: str | None


_HINTS = {
    "channel_not_found": "the channel does not exist, or it is private and the bot is not in it",
    "not_in_channel": "the bot is not in the channel: invite it with /invite",
    "invalid_auth": "the bot token is not valid: update the Slack Workspace block",
    "ratelimited": "Slack kept rate-limiting the bot after the retries",
}


class Slack:
    """A thin client over one workspace; channel names are resolved to IDs once per instance."""

    def __init__(self, workspace: SlackWorkspace):
        self.workspace = workspace
        self.client = workspace.get_client()
        self._channels: dict[str, tuple[str, bool]] | None = None

    def _call(self, what: str, method, **kwargs):
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            code = exc.response.get("error", "error") if exc.response is not None else "error"
            raise SlackError(f"Slack {what}: {code} ({_HINTS.get(code, 'see the Slack API docs')})") from None

    def channel_id(self, name: str) -> str:
        """The ID of `#name` (uploads need IDs), after checking the bot is a member."""
        if self._channels is None:
            self._channels, cursor = {}, None
            while True:
                page = self._call(
                    "listing channels",
                    self.client.conversations_list,
                    types="public_channel,private_channel",
                    exclude_archived=True,
                    limit=200,
                    cursor=cursor,
                )
                for channel in page["channels"]:
                    self._channels[channel["name"]] = (channel["id"], bool(channel.get("is_member")))
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        bare = name.strip().lstrip("#")
        if bare not in self._channels:
            raise SlackError(f"Slack channel #{bare} does not exist, or the bot cannot see it")
        channel_id, is_member = self._channels[bare]
        if not is_member:
            raise SlackError(f"the Slack bot is not in #{bare}: invite it with /invite, then retry")
        return channel_id

    def post(self, channel: str, text: str, thread_ts: str | None = None) -> PostedMessage:
        """Post `text` (Slack mrkdwn) to a channel and return where it landed."""
        channel_id = self.channel_id(channel)
        response = self._call(
            f"posting to {channel}",
            self.client.chat_postMessage,
            channel=channel_id,
            text=text,
            thread_ts=thread_ts,
            unfurl_links=False,
        )
        link = self._call(
            "getting a permalink",
            self.client.chat_getPermalink,
            channel=channel_id,
            message_ts=response["ts"],
        )
        return PostedMessage(channel, channel_id, response["ts"], link.get("permalink"))

    def share_file(
        self,
        channel: str,
        path: Path,
        title: str | None = None,
        comment: str | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """Upload a file into a channel (files_upload_v2) and return its file ID."""
        channel_id = self.channel_id(channel)
        response = self._call(
            f"sharing {path.name} in {channel}",
            self.client.files_upload_v2,
            channel=channel_id,
            file=str(path),
            filename=path.name,
            title=title or path.name,
            initial_comment=comment,
            thread_ts=thread_ts,
        )
        return response["file"]["id"]

    def direct_message(self, email: str, text: str) -> PostedMessage | None:
        """DM the person with this email; None when the workspace has no such user."""
        try:
            user = self.client.users_lookupByEmail(email=email)["user"]["id"]
        except SlackApiError:
            return None
        channel_id = self._call("opening a DM", self.client.conversations_open, users=user)["channel"]["id"]
        response = self._call("sending a DM", self.client.chat_postMessage, channel=channel_id, text=text)
        return PostedMessage(f"@{email}", channel_id, response["ts"], None)
