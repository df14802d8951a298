"""The runbook's platform catalogue: which platforms get Email Template 1, and their guides."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

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

    def find(self, platform_name: str) -> Platform | None:
        """The catalogue platform a CSM meant, or None if it is not one of the runbook's list."""
        return self.by_alias.get(normalise(platform_name))

    @property
    def platforms(self) -> list[Platform]:
        return list(dict.fromkeys(self.by_alias.values()))


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
