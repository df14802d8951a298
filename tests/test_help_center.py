"""The Help Center catalogue: overridable without editing code, and loud while it is a placeholder."""

from __future__ import annotations

import pytest

from tasks.platforms import (
    CatalogueOverrideError,
    catalogue_links,
    is_placeholder,
    load_catalogue,
    placeholder_links,
    with_overrides,
)
from tasks.steps import help_center_warning

CATALOGUE = load_catalogue()


def test_the_shipped_catalogue_is_a_placeholder_and_says_so():
    assert CATALOGUE.uses_placeholders
    warning = help_center_warning(CATALOGUE)
    assert "Help Center links are placeholders (https://help.10kc.example)" in warning
    assert "`help_center`" in warning


def test_overrides_replace_the_base_and_a_guide_found_by_any_alias():
    catalogue = with_overrides(
        CATALOGUE, {"base_url": "https://help.10kc.com/", "guides": {"azure ad": "/articles/99-entra"}}
    )
    assert (
        catalogue.find("Entra ID").guide_url(catalogue.help_center_url)
        == "https://help.10kc.com/articles/99-entra"
    )
    assert catalogue.find("AAD").guide_path == "/articles/99-entra"  # every alias sees the new guide
    assert catalogue.find("Okta").guide_path == CATALOGUE.find("Okta").guide_path
    assert CATALOGUE.find("Entra ID").guide_path != "/articles/99-entra"  # the default is untouched


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (
            {"guides": {"Oracle HCM": "/articles/1"}},
            "help_center.guides: Oracle HCM is not a platform in the catalogue",
        ),
        (
            {"guides": {"Okta": "articles/1"}},
            "help_center.guides.Okta: expected a path such as /articles/123",
        ),
        ({"base_url": "help.10kc.com"}, "help_center.base_url: expected an http(s) URL"),
        ({"baseurl": "https://help.10kc.com"}, "help_center: unknown key(s) baseurl"),
        (
            {"sftp_guide": "https://help.10kc.com/x"},
            "help_center.sftp_guide: expected a path such as /articles/123",
        ),
        (["https://help.10kc.com"], "help_center: expected an object with base_url and/or guides"),
    ],
)
def test_a_bad_override_is_one_line_naming_the_field(overrides, problem):
    with pytest.raises(CatalogueOverrideError) as error:
        with_overrides(CATALOGUE, overrides)
    assert str(error.value) == problem


def test_placeholder_links_are_found_in_an_email_body():
    body = (
        "See [the guide](https://help.10kc.example/articles/okta). "
        "Or https://help.10kc.com/articles/real and https://docs.example.com/x."
    )
    assert placeholder_links(body) == [
        "https://help.10kc.example/articles/okta",
        "https://docs.example.com/x",
    ]


EVERY_LINK = {
    "base_url": "https://help.10kc.com",
    "api_guide": "/articles/1-api",
    "mapping_article": "/articles/2-mapping",
    "mapping_template": "/articles/3-template",
    "sftp_guide": "/articles/4-sftp",
    "guides": {p.name: f"/articles/{n}-guide" for n, p in enumerate(CATALOGUE.platforms, start=10)},
}


def test_every_link_kind_is_overridden_by_the_variable():
    catalogue = with_overrides(CATALOGUE, EVERY_LINK)
    links = catalogue_links(catalogue)
    assert links["API guide"] == "https://help.10kc.com/articles/1-api"
    assert links["mapping article"] == "https://help.10kc.com/articles/2-mapping"
    assert links["mapping template"] == "https://help.10kc.com/articles/3-template"
    assert links["SFTP guide"] == "https://help.10kc.com/articles/4-sftp"
    assert len(links) == 4 + len(CATALOGUE.platforms)
    assert not catalogue.uses_placeholders and help_center_warning(catalogue) is None


def test_a_real_host_with_a_shipped_path_is_still_a_placeholder():
    """Before: only the host was looked at, so a real base_url hid every placeholder path."""
    catalogue = with_overrides(CATALOGUE, EVERY_LINK | {"mapping_template": CATALOGUE.mapping_template_path})
    assert catalogue.uses_placeholders
    assert help_center_warning(catalogue).startswith(
        "Help Center links are placeholders (1 placeholder paths: mapping template)"
    )
    template = "https://help.10kc.com" + CATALOGUE.mapping_template_path
    assert is_placeholder(template) and not is_placeholder("https://help.10kc.com/articles/3-template")
    body = f"The table: {template}. The guide: https://help.10kc.com/articles/1-api."
    assert placeholder_links(body) == [template]
