"""Posting to the 10KC Slack: messages, files and direct messages, with channels resolved once.

Slack errors become `SlackError` with one clear line (which channel, what is wrong, what to do).
A message whose answer was lost (timeout, dropped connection, 5xx) is looked up by its metadata in
the channel before it is posted again, so it appears once. With a once-step's key, that holds across
processes too: the post id comes from the key, and a run after one that was cut off (a killed
worker) first looks for the earlier post, or for the earlier file share by its name in the thread.

Every message is fitted to Slack's limits before it goes (tasks/slack_fit.py): text over 40,000
characters, a section over 3,000, a header over 150 are cut (saying how many lines are not shown,
with the run's link in Prefect), more than 50 blocks are shortened; blocks that still cannot go (a
button value over 2,000) or that Slack refuses anyway are dropped for the plain text, so a notice is
never lost to a limit.
"""

from __future__ import annotations

import hashlib
import http.client
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

from prefect.context import FlowRunContext
from prefect.settings import PREFECT_UI_URL
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from blocks.slack import SlackWorkspace
from tasks.once import earlier_attempt
from tasks.private_apis import slack_upload_bytes
from tasks.slack_fit import SECTION_LIMIT, TEXT_LIMIT, fit_blocks, fit_text


class SlackError(RuntimeError):
    """A Slack call failed for a reason a person has to fix (missing channel, bot not invited…)."""

    code: str | None = None  # Slack's error code, when Slack answered with one


def _slack_error(message: str, code: str | None = None) -> SlackError:
    error = SlackError(message)
    error.code = code
    return error


# what Slack answers when a message is over a limit: then the plain text goes instead
TOO_BIG = {"invalid_blocks", "invalid_blocks_format", "msg_too_long"}


def run_link() -> str | None:
    """This flow run's page in the Prefect UI, when called in a flow run."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return None
    base = (PREFECT_UI_URL.value() or "http://127.0.0.1:4200").rstrip("/")
    return f"{base}/runs/flow-run/{context.flow_run.id}"


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


# A post failed this way may have happened: no answer, or a server error after the work was done.
UNCLEAR = (URLError, ConnectionError, TimeoutError, http.client.HTTPException)
POST_ATTEMPTS = 4
METADATA_EVENT = "hris_runbook_post"


def _server_error(exc: SlackApiError) -> bool:
    return exc.response is not None and exc.response.status_code >= 500


class Slack:
    """A thin client over one workspace; channel names are resolved to IDs once per instance."""

    def __init__(self, workspace: SlackWorkspace):
        self.workspace = workspace
        self.client = workspace.get_client()
        self._channels: dict[str, tuple[str, bool]] | None = None

    def _poster(self) -> WebClient:
        """Like `client`, but retrying only 429s: posts are not idempotent, see `_post_once`."""
        options = {"base_url": self.client.base_url, "timeout": self.client.timeout}
        client = WebClient(token=self.client.token, **options)
        client.retry_handlers = [RateLimitErrorRetryHandler(max_retry_count=self.workspace.max_retries)]
        return client

    def _post_once(self, what: str, channel_id: str, once_key: str | None, **kwargs) -> dict:
        """chat.postMessage, once: it carries a post id in its message metadata (from `once_key`, else
        random), by which a post that may have happened is found instead of being sent again."""
        post_id = hashlib.sha256(once_key.encode()).hexdigest()[:32] if once_key else uuid.uuid4().hex
        metadata = {"event_type": METADATA_EVENT, "event_payload": {"post_id": post_id}}

        def ours(message: dict) -> bool:
            return ((message.get("metadata") or {}).get("event_payload") or {}).get("post_id") == post_id

        thread_ts = kwargs.get("thread_ts")
        since = time.time()
        if once_key and (earlier := earlier_attempt(f"{once_key}--slack-post")) is not None:
            since = earlier
            found = self._find(what, channel_id, thread_ts, since, ours, "an earlier run may have posted it")
            if found is not None:
                return {"ok": True, "channel": channel_id, "ts": found["ts"], "message": found}
        post = self._poster().chat_postMessage
        kwargs |= {"channel": channel_id, "metadata": metadata}
        return self._once(what, channel_id, thread_ts, since, ours, post, **kwargs)

    def _once(
        self, what: str, where: str, thread_ts: str | None, since: float, ours, send, /, **kwargs
    ) -> dict:
        """Send a write that Slack does not deduplicate: after an unclear failure (no answer, 5xx)
        look for our message in the channel or thread (conversations.history/replies: scopes
        channels:history, groups:history, im:history) and send again only if it is not there."""
        for attempt in range(POST_ATTEMPTS):
            try:
                return send(**kwargs)
            except SlackApiError as exc:
                if not _server_error(exc):
                    code = exc.response.get("error", "error") if exc.response is not None else "error"
                    hint = _HINTS.get(code, "see the Slack API docs")
                    raise _slack_error(f"Slack {what}: {code} ({hint})", code) from None
                problem = f"HTTP {exc.response.status_code}"
            except UNCLEAR as exc:
                problem = exc.__class__.__name__
            found = self._find(what, where, thread_ts, since, ours, f"no answer ({problem})")
            if found is not None:
                return {"ok": True, "channel": where, "ts": found["ts"], "message": found}
            if attempt < POST_ATTEMPTS - 1:
                time.sleep(min(0.5 * 2**attempt, 10))
        raise SlackError(f"Slack {what}: no answer after {POST_ATTEMPTS} attempts ({problem}); not posted")

    def _find(self, what: str, where: str, thread_ts: str | None, since: float, ours, why: str):
        """The first message in the channel (or thread) from a minute before `since` (clocks differ)
        for which `ours` holds, or None; every page is read."""
        read = self.client.conversations_replies if thread_ts else self.client.conversations_history
        options = {
            "channel": where,
            "oldest": f"{since - 60:.6f}",
            "include_all_metadata": True,
            "limit": 200,
        }
        if thread_ts:
            options["ts"] = thread_ts
        cursor = None
        while True:
            try:
                page = read(**options, **({"cursor": cursor} if cursor else {}))
            except (SlackApiError, *UNCLEAR) as exc:
                raise SlackError(
                    f"Slack {what}: {why}, and the channel cannot be read to check whether "
                    f"it was posted ({exc.__class__.__name__}); look in the channel before retrying"
                ) from None
            found = next((m for m in page.get("messages") or [] if ours(m)), None)
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if found is not None or not cursor:
                return found

    def _call(self, what: str, method, **kwargs):
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            code = exc.response.get("error", "error") if exc.response is not None else "error"
            hint = _HINTS.get(code, "see the Slack API docs")
            raise _slack_error(f"Slack {what}: {code} ({hint})", code) from None

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

    def post(
        self,
        channel: str,
        text: str,
        thread_ts: str | None = None,
        blocks: list[dict] | None = None,
        once_key: str | None = None,
    ) -> PostedMessage:
        """Post `text` (Slack mrkdwn; with `blocks`, the notification fallback) and return where it
        landed; with a once-step's `once_key`, a post an earlier run made for that key is returned.
        What is over Slack's limits is cut to fit (see `fit_text`), never dropped."""
        channel_id = self.channel_id(channel)
        response = self._post_fitted(
            f"posting to {channel}",
            channel_id,
            once_key,
            text=text,
            thread_ts=thread_ts,
            blocks=blocks,
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
        once_key: str | None = None,
    ) -> str:
        """Upload a file into a channel (files_upload_v2) and return its file ID; with a once-step's
        `once_key`, a file of this name an earlier run shared there (or in the thread) is returned."""
        channel_id = self.channel_id(channel)
        what = f"sharing {path.name} in {channel}"
        since = time.time()
        marker = f"{once_key}--slack-file-{hashlib.sha256(path.name.encode()).hexdigest()[:16]}"
        if once_key and (earlier := earlier_attempt(marker)) is not None:
            since = earlier

            def named(message: dict) -> bool:
                return any(f.get("name") == path.name for f in message.get("files") or [])

            found = self._find(what, channel_id, thread_ts, since, named, "an earlier run may have shared it")
            if found is not None:
                return next(f["id"] for f in found["files"] if f.get("name") == path.name)
        data = path.read_bytes()
        # files_upload_v2's three steps, so that the last one (which shares) is done once
        upload = self._call(
            what, self.client.files_getUploadURLExternal, filename=path.name, length=len(data)
        )
        file_id = upload["file_id"]
        status = slack_upload_bytes(self.client, upload["upload_url"], data)
        if status != 200:
            raise SlackError(f"Slack {what}: the upload answered HTTP {status}")

        def ours(message: dict) -> bool:
            return any(f.get("id") == file_id for f in message.get("files") or [])

        self._once(
            what,
            channel_id,
            thread_ts,
            since,
            ours,
            self._poster().files_completeUploadExternal,
            files=[{"id": file_id, "title": title or path.name}],
            channel_id=channel_id,
            initial_comment=comment,
            thread_ts=thread_ts,
        )
        return file_id

    def direct_message(self, email: str, text: str, blocks: list[dict] | None = None) -> PostedMessage | None:
        """DM the person with this email; None when the workspace has no such user."""
        try:
            user = self.client.users_lookupByEmail(email=email)["user"]["id"]
        except SlackApiError:
            return None
        channel_id = self._call("opening a DM", self.client.conversations_open, users=user)["channel"]["id"]
        response = self._post_fitted("sending a DM", channel_id, None, text=text, blocks=blocks)
        return PostedMessage(f"@{email}", channel_id, response["ts"], None)

    def _post_fitted(
        self,
        what: str,
        channel_id: str,
        once_key: str | None,
        *,
        text: str,
        blocks: list[dict] | None,
        **kwargs,
    ) -> dict:
        """`_post_once` with the message fitted to Slack's limits; when Slack still refuses it as too
        big, the plain text goes alone (the notice without its blocks, cut shorter if need be)."""
        link = run_link()
        fitted = fit_blocks(blocks, link)
        text = fit_text(text, TEXT_LIMIT, link)
        try:
            return self._post_once(what, channel_id, once_key, text=text, blocks=fitted, **kwargs)
        except SlackError as exc:
            if exc.code not in TOO_BIG:
                raise
        # Slack counts differently than we do (or refuses blocks for a reason we do not check):
        # the plain text, short enough for any notice, still gets there
        plain = fit_text(text, SECTION_LIMIT, link)
        return self._post_once(what, channel_id, once_key, text=plain, blocks=None, **kwargs)
