"""Jinja2 rendering for every template under templates/: a missing variable is an error, never a blank."""

from __future__ import annotations

import jinja2

from templates import TEMPLATES_DIR


class TemplateError(ValueError):
    """A template could not be rendered: missing variable or unknown template; names which."""


environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


def render(name: str, **context) -> str:
    """Render templates/<name> with StrictUndefined."""
    try:
        return environment.get_template(name).render(**context)
    except jinja2.TemplateNotFound:
        raise TemplateError(f"template {name} does not exist") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"template {name}: {exc.message}") from None
