"""How the Slack stand-in replies: `ok: true` with data, `ok: false` with Slack's error code, a 429 with
Retry-After, and Slack's published limits past which it refuses a message or a view, shared by the
Web API routes (`slack.py`) and the interactive ones (`slack_interactive.py`)."""

from __future__ import annotations

import json

from sandbox.http import Response

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


def ok_reply(**data) -> Response:
    return Response(200, {"ok": True, **data})


def error_reply(code: str, detail: str | None = None) -> Response:
    body: dict = {"ok": False, "error": code}
    if detail:
        body["response_metadata"] = {"messages": [f"[ERROR] {detail}"]}
    return Response(200, body)


def rate_limited(retry_after: int = 1) -> Response:
    return Response(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": str(retry_after)})
