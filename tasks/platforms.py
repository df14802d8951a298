"""The runbook's platform catalogue: which platforms get Email Template 1, and their guides."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import yaml

from templates import TEMPLATES_DIR

CATALOGUE_FILE = TEMPLATES_DIR / "platforms.yaml"


@dataclass(frozen=True)
class Platform:
    """A platform with a dedicated Help Center setup guide (Email Template 1)."""

    name: str
    guide_path: str

    def guide_url(self, help_center_url: str) -> str:
        return help_center_url.rstrip("/") + self.guide_path


@dataclass(frozen=True)
class Catalogue:
    help_center_url: str
    api_guide_path: str
    sftp_guide_title: str
    sftp_guide_path: str
    mapping_article_path: str
    mapping_template_path: str
    default_question_fields: list[str]
    by_alias: dict[str, Platform]

    @property
    def uses_placeholders(self) -> bool:
        """Any link the emails can carry is still a placeholder: the example host, or a shipped path."""
        return any(is_placeholder(url) for url in catalogue_links(self).values())

    def find(self, platform_name: str) -> Platform | None:
        """The catalogue platform a CSM meant, or None if it is not one of the runbook's list."""
        return self.by_alias.get(normalise(platform_name))

    @property
    def platforms(self) -> list[Platform]:
        return list(dict.fromkeys(self.by_alias.values()))


# RFC 2606 / 6761 names that can never be a real Help Center: the catalogue's placeholders use them.
_PLACEHOLDER_SUFFIXES = (".example", ".invalid", ".test", ".localhost", "example.com", "example.org")
_URL = re.compile(r"https?://[^\s)\]>\"']+")


class CatalogueOverrideError(ValueError):
    """The `help_center` Variable does not describe a catalogue override."""


def is_placeholder_host(url: str) -> bool:
    """True when the URL's host is a reserved example name, i.e. never the real Help Center."""
    host = (urlsplit(url).hostname or "").lower()
    return any(host == s.lstrip(".") or host.endswith(s) for s in _PLACEHOLDER_SUFFIXES)


def placeholder_paths() -> frozenset[str]:
    """The guide paths platforms.yaml marks `# PLACEHOLDER` (not yet confirmed on the Help Center)."""
    paths = set()
    for line in CATALOGUE_FILE.read_text(encoding="utf-8").splitlines():
        if "# PLACEHOLDER" in line:
            paths.update(re.findall(r"(?<![\w/])(/[\w\-/.]+)", line.split("#", 1)[0]))
    return frozenset(paths)


def is_placeholder(url: str) -> bool:
    """A link that cannot be the real page: a reserved example host, or a path still marked placeholder."""
    return is_placeholder_host(url) or (urlsplit(url).path or "/") in _placeholder_paths()


_placeholder_paths = cache(placeholder_paths)


def placeholder_links(text: str) -> list[str]:
    """Every link in `text` that points at a placeholder (host or path), in order, once each."""
    return list(dict.fromkeys(u.rstrip(".,;") for u in _URL.findall(text) if is_placeholder(u.rstrip(".,;"))))


def catalogue_links(catalogue: Catalogue) -> dict[str, str]:
    """Every Help Center link the emails can carry, by what it is."""
    base = catalogue.help_center_url.rstrip("/")
    links = {
        "API guide": base + catalogue.api_guide_path,
        "mapping article": base + catalogue.mapping_article_path,
        "mapping template": base + catalogue.mapping_template_path,
        "SFTP guide": base + catalogue.sftp_guide_path,
    }
    links |= {f"{p.name} guide": p.guide_url(base) for p in catalogue.platforms}
    return links


def with_overrides(catalogue: Catalogue, overrides: dict[str, Any] | None) -> Catalogue:
    """The catalogue with the `help_center` Variable applied: `base_url`, `guides` by platform name
    or alias (`{"Workday": "/articles/123-workday"}`) and the paths of the other link kinds
    (`api_guide`, `mapping_article`, `mapping_template`, `sftp_guide`), without editing platforms.yaml."""
    if not overrides:
        return catalogue
    if not isinstance(overrides, dict):
        raise CatalogueOverrideError("help_center: expected an object with base_url and/or guides")
    unknown = set(overrides) - {"base_url", "guides", *_LINK_FIELDS}
    if unknown:
        raise CatalogueOverrideError(f"help_center: unknown key(s) {', '.join(sorted(unknown))}")
    guides = overrides.get("guides") or {}
    if not isinstance(guides, dict):
        raise CatalogueOverrideError("help_center.guides: expected platform name -> guide path")
    by_alias = dict(catalogue.by_alias)
    for name, path in guides.items():
        platform = catalogue.find(name)
        if platform is None:
            raise CatalogueOverrideError(f"help_center.guides: {name} is not a platform in the catalogue")
        if not isinstance(path, str) or not path.startswith("/"):
            raise CatalogueOverrideError(f"help_center.guides.{name}: expected a path such as /articles/123")
        updated = replace(platform, guide_path=path)
        by_alias = {alias: updated if p == platform else p for alias, p in by_alias.items()}
    base = overrides.get("base_url") or catalogue.help_center_url
    if not isinstance(base, str) or not re.match(r"^https?://[^\s/]+", base):
        raise CatalogueOverrideError("help_center.base_url: expected an http(s) URL")
    paths: dict[str, Any] = {}
    for key, field in _LINK_FIELDS.items():
        if key in overrides:
            path = overrides[key]
            if not isinstance(path, str) or not path.startswith("/"):
                raise CatalogueOverrideError(f"help_center.{key}: expected a path such as /articles/123")
            paths[field] = path
    return replace(catalogue, help_center_url=base.rstrip("/"), by_alias=by_alias, **paths)


_LINK_FIELDS = {
    "api_guide": "api_guide_path",
    "mapping_article": "mapping_article_path",
    "mapping_template": "mapping_template_path",
    "sftp_guide": "sftp_guide_path",
}


def normalise(name: str) -> str:
    """Fold case, spacing and punctuation so 'Bamboo HR' and 'bamboohr' are one name."""
    return re.sub(r"[^a-z0-9]", "", name.casefold())


@cache
def load_catalogue() -> Catalogue:
    """Read templates/platforms.yaml, refusing an alias that would name two platforms."""
    data = yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))
    by_alias: dict[str, Platform] = {}
    for entry in data["platforms"]:
        platform = Platform(name=entry["name"], guide_path=entry["guide"])
        for alias in [entry["name"], *entry.get("aliases", [])]:
            key = normalise(alias)
            if key in by_alias and by_alias[key] != platform:
                raise ValueError(
                    f"{CATALOGUE_FILE.name}: alias {alias!r} names both "
                    f"{by_alias[key].name} and {platform.name}"
                )
            by_alias[key] = platform
    return Catalogue(
        help_center_url=data["help_center_url"],
        api_guide_path=data["api_guide"],
        sftp_guide_title=data["sftp_guide"]["title"],
        sftp_guide_path=data["sftp_guide"]["path"],
        mapping_article_path=data["mapping_article"],
        mapping_template_path=data["mapping_template"],
        default_question_fields=list(data["default_question_fields"]),
        by_alias=by_alias,
    )
