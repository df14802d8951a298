"""Jinja2 rendering for every template under templates/: a missing variable is an error, never a blank.

Templates under `slack/` pass every value through `slack_text`, so a file name or a customer field
can never mention @channel, open a link or break the message's formatting. A rendered Slack template
(`SlackText`) is already Slack text and goes into another one as it is.
"""

from __future__ import annotations

import re

import jinja2

from templates import TEMPLATES_DIR


class TemplateError(ValueError):
    """A template could not be rendered: missing variable or unknown template; names which."""


_LINE_BREAKS = re.compile(r"[\t\n\r\v\f\u2028\u2029]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class SlackText(str):
    """Text rendered from a Slack template: escaped already, its formatting ours."""


def slack_text(value) -> str:
    """A value we did not write, as Slack text: `& < >` escaped (Slack's control characters),
    control characters dropped, line breaks made spaces, backticks unable to close a code span."""
    if isinstance(value, SlackText):
        return value
    text = _CONTROL.sub("", _LINE_BREAKS.sub(" ", str(value)))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("`", "\u02cb")


def _environment(**options) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        **options,
    )


environment = _environment()
slack_environment = _environment(finalize=slack_text)


def render(name: str, **context) -> str:
    """Render templates/<name> with StrictUndefined (Slack templates with every value escaped)."""
    slack = name.startswith("slack/")
    try:
        text = (slack_environment if slack else environment).get_template(name).render(**context)
        return SlackText(text) if slack else text
    except jinja2.TemplateNotFound:
        raise TemplateError(f"template {name} does not exist") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"template {name}: {exc.message}") from None
