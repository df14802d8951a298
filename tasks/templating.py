"""Jinja2 rendering for every template under templates/: a missing variable is an error, never a blank.

Templates under `slack/` pass every value through `slack_text`, so a file name or a customer field
can never mention @channel, open a link or break the message's formatting. A rendered Slack template
(`SlackText`) is already Slack text and goes into another one as it is.
"""

from __future__ import annotations

import re
from typing import Any

import jinja2

from templates import TEMPLATES_DIR


class TemplateError(ValueError):
    """A template could not be rendered: missing variable or unknown template; names which."""


_LINE_BREAKS = re.compile(r"[\t\n\r\v\f\u2028\u2029]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class SlackText(str):
    """Text rendered from a Slack template: escaped already, its formatting ours."""


def slack_text(value: object) -> str:
    """A value we did not write, as Slack text: `& < >` escaped (Slack's control characters),
    control characters dropped, line breaks made spaces, backticks unable to close a code span."""
    if isinstance(value, SlackText):
        return value
    text = _CONTROL.sub("", _LINE_BREAKS.sub(" ", str(value)))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("`", "\u02cb")


def _environment(**options: Any) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        **options,
    )


def file_size(size: int) -> str:
    """Bytes as a person reads them: `412 B`, `3.4 KiB`, `1.2 MiB`."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


environment = _environment()
slack_environment = _environment(finalize=slack_text)
for _env in (environment, slack_environment):
    _env.filters["file_size"] = file_size


def capped(lines: list[str], limit: int, tail: str = "and {n} more") -> list[str]:
    """The first `limit` lines, then one `tail` line counting the rest (its `{n}`), for lists people read."""
    extra = len(lines) - limit
    return lines[:limit] + ([tail.format(n=extra)] if extra > 0 else [])


def render(name: str, **context: Any) -> str:
    """Render templates/<name> with StrictUndefined (Slack templates with every value escaped)."""
    slack = name.startswith("slack/")
    try:
        text = (slack_environment if slack else environment).get_template(name).render(**context)
        return SlackText(text) if slack else text
    except jinja2.TemplateNotFound:
        raise TemplateError(f"template {name} does not exist") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"template {name}: {exc.message}") from None
