"""Fitting a message to Slack's limits (Prefect-free): what is cut is said in words, with where the rest
is, and a cut never splits a link, an `&amp;`, an `:emoji:`, a `*bold*` span, a code block, or a
character made of several code points (an emoji with skin tone or joiner, a flag, an accent)."""

from __future__ import annotations

import unicodedata
from typing import Any

# Slack's limits (api.slack.com/reference/block-kit/blocks, methods/chat.postMessage)
TEXT_LIMIT = 40_000
SECTION_LIMIT = 3_000
HEADER_LIMIT = 150
BLOCKS_LIMIT = 50
VALUE_LIMIT = 2_000

FENCE = "```"
MARKERS = "*_~`"  # mrkdwn's inline formatting, each opened and closed by the same character
WORD = 100  # a cut inside a word moves back to the space before it, when that is this near
JOINERS = {"\u200d", "\ufe0e", "\ufe0f", "\u20e3"}  # zero-width joiner, variation selectors, keycap


def fit_text(text: str, limit: int = TEXT_LIMIT, link: str | None = None) -> str:
    """`text` as it is when it fits in `limit` characters; else its start, cut at a line break where
    one is near (never inside a mrkdwn entity or a character), and a last line saying how many lines
    are not shown and where all of it is (`link`, the run in Prefect)."""
    if len(text) <= limit:
        return text
    longest = _note(text, link)  # the note naming the most it can
    end = _cut(text, max(limit - len(longest) - len(FENCE) - 1, 0))
    head = text[:end].rstrip(" ")
    if head.count(FENCE) % 2:
        head += "\n" + FENCE  # close the code block, so the note below is not inside it
    return head + _note(text[end:], link)


def _note(rest: str, link: str | None) -> str:
    """The last line of a cut text: how much is not shown and where to read all of it."""
    lines = rest.strip("\n").count("\n") + 1
    missing = f"{len(rest):,} more characters ({lines:,} line{'s' if lines != 1 else ''}) not shown"
    where = f": all of it is in <{link}|the run in Prefect>" if link else ""
    return f"\n… _{missing}, cut to fit in Slack{where}_"


def _cut(text: str, end: int) -> int:
    """Where to cut `text` at or before `end`: a line break in the last fifth, else the end of a
    whole word outside any formatting; always between whole characters and whole entities."""
    line = text.rfind("\n", 0, end)
    if line >= end * 0.8:
        return line
    start = line + 1
    space = max(text.rfind(" ", start, end + 1), text.rfind("\t", start, end + 1))
    if end < len(text) and not text[end].isspace() and space > max(start, end - WORD):
        end = space  # not inside a word, an :emoji: or an &amp;
    end = min(end, _unclosed(text, start, end))
    opened = text.rfind("<", start, end)
    if opened > text.rfind(">", start, end):
        end = opened  # a link or mention cut in half would show as markup
    entity = text.rfind("&", start, end)
    if entity >= 0 and end - entity < 5 and ";" not in text[entity:end]:
        end = entity  # "&am" of a cut "&amp;"
    while 0 < end < len(text) and _inside_character(text, end):
        end -= 1
    return end


def _unclosed(text: str, start: int, end: int) -> int:
    """The position of the first formatting marker in `text[start:end]` left open (`end` if none);
    markers in a link `<…>` or in `code` do not count."""
    opened: dict[str, int] = {}
    in_link = False
    for i in range(start, end):
        char = text[i]
        if char == "<" and not opened.get("`"):
            in_link = True
        elif char == ">":
            in_link = False
        elif char in MARKERS and not in_link and ("`" not in opened or char == "`"):
            if char in opened:
                del opened[char]
            elif i == start or not text[i - 1].isalnum():  # snake_case opens nothing
                opened[char] = i
    return min(opened.values(), default=end)


def _inside_character(text: str, i: int) -> bool:
    """Whether a cut before `text[i]` splits what a reader sees as one character."""
    before, after = text[i - 1], text[i]
    if after in JOINERS or before == "\u200d" or unicodedata.combining(after):
        return True
    if "\U0001f3fb" <= after <= "\U0001f3ff":  # a skin tone belongs to the emoji before it
        return True
    if _regional(after) and _regional(before):  # a flag is two regional indicators
        run = 0
        while run < i and _regional(text[i - 1 - run]):
            run += 1
        return run % 2 == 1
    return "\ud800" <= before <= "\udbff"  # a lone high surrogate


def _regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def fit_plain(text: str, limit: int) -> str:
    """Plain text (a header) cut to `limit` with an ellipsis, between whole characters."""
    if len(text) <= limit:
        return text
    end = limit - 1
    while 0 < end < len(text) and _inside_character(text, end):
        end -= 1
    return text[:end] + "…"


def fit_blocks(blocks: list[dict[str, Any]] | None, link: str | None = None) -> list[dict[str, Any]] | None:
    """Message blocks cut to Slack's limits; None when they cannot fit (a button value too long):
    then the message goes as its plain text."""
    if not blocks:
        return blocks
    fitted = []
    for block in blocks:
        block = dict(block)
        kind = block.get("type")
        if kind == "section" and isinstance(block.get("text"), dict):
            text = block["text"]
            block["text"] = {**text, "text": fit_text(text.get("text", ""), SECTION_LIMIT, link)}
        elif kind == "header" and isinstance(block.get("text"), dict):
            block["text"] = {**block["text"], "text": fit_plain(block["text"].get("text", ""), HEADER_LIMIT)}
        elif kind == "context":
            block["elements"] = [
                {**e, "text": fit_text(e["text"], SECTION_LIMIT)} if isinstance(e.get("text"), str) else e
                for e in block.get("elements") or []
            ]
        elif kind == "actions":
            if any(len(e.get("value") or "") > VALUE_LIMIT for e in block.get("elements") or []):
                return None
        fitted.append(block)
    if len(fitted) > BLOCKS_LIMIT:
        buttons = [b for b in fitted if b.get("type") == "actions"][-1:]
        rest = [b for b in fitted if b.get("type") != "actions"]
        kept = rest[: BLOCKS_LIMIT - 1 - len(buttons)]
        where = f" <{link}|in Prefect>" if link else ""
        note = f"… {len(rest) - len(kept)} more parts do not fit in Slack: read them{where or ' in Prefect'}"
        fitted = kept + [{"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}] + buttons
    return fitted
