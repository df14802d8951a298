"""Signed tokens, through the routes that read them: a token opens only the page it was made for,
decoding is strict, and links emailed in the first token format keep working for their own page."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import httpx
import pytest

from tasks.export_links import export_upload_link, read_link
from tasks.review_links import download_link
from tasks.setup_links import make_setup_link
from tasks.tokens import LinkError, b64, seal, unb64
from tests.conftest import SETUP_LINKS_SECRET, ServerThread

SECRET = SETUP_LINKS_SECRET  # one key for both pages, as when the Web App block falls back to WorkOS's


def first_format(secret: str, text: str, purpose: str, raw_payload: str | None = None) -> str:
    """A token as the first format made it: base64url(text) "." HMAC(secret, purpose + payload)."""
    payload = raw_payload if raw_payload is not None else b64(text.encode())
    sig = hmac.new(secret.encode(), (purpose + payload).encode(), hashlib.sha256).digest()
    return f"{payload}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


@pytest.fixture
def organization(workos_credentials) -> str:
    from tasks.workos import ensure_organization
    from tests.conftest import make_customer

    return ensure_organization(workos_credentials, make_customer()).id


def get(url: str) -> httpx.Response:
    return httpx.get(url, trust_env=False, timeout=60, follow_redirects=False)


@pytest.fixture
def pages(workos_credentials, tmp_path):
    """The public app with every token-reading route under the same key."""
    from tasks.setup_links import workos_portal_links
    from webapp import member_exports, review_files, setup_links
    from webapp.app import create_public_app

    server = ServerThread(
        create_public_app(
            setup_links.routes(SECRET, workos_portal_links(workos_credentials)),
            member_exports.routes(SECRET, files_dir=lambda: tmp_path),
            review_files.routes(SECRET, files_dir=lambda: tmp_path),
        )
    )
    try:
        yield server
    finally:
        server.stop()


def tokens_by_purpose(organization: str) -> dict[str, list[str]]:
    """Valid tokens of each purpose, in today's and the first format."""
    expires = int(time.time()) + 3600
    run = uuid.uuid4()
    export = json.dumps(
        {"run": str(run), "customer": "acme.com", "upload": "u1", "company": None, "expires": expires},
        separators=(",", ":"),
    )
    return {
        "setup": [
            make_setup_link("", SECRET, organization, days=1).rsplit("/", 1)[1],
            first_format(SECRET, f"{organization}.{expires}", ""),
        ],
        "member-export": [
            export_upload_link("", SECRET, run, "acme.com", "u1").rsplit("/", 1)[1],
            first_format(SECRET, export, "member-export:"),
        ],
        "review-files": [
            download_link("", SECRET, "acme.com", "sample-staff", ["potential invites.csv"]).rsplit("/", 1)[
                1
            ],
        ],
    }


ROUTES = {"setup": "/setup/", "member-export": "/member-export/", "review-files": "/review-files/"}


def test_a_token_of_one_purpose_is_refused_by_every_other_route(pages, organization):
    tokens = tokens_by_purpose(organization)
    for purpose, made in tokens.items():
        for route_purpose, route in ROUTES.items():
            if route_purpose == purpose:
                continue
            for token in made:
                response = get(f"{pages.url}{route}{token}")
                assert response.status_code == 403, (purpose, route, token)
                assert "not valid" in response.text and "location" not in response.headers
    # The first format signed purpose + payload with no separator: the member-export purpose moved
    # in front of the payload must not pass as a setup link's payload.
    payload, sig = tokens["member-export"][1].split(".")
    assert get(f"{pages.url}/setup/member-export:{payload}.{sig}").status_code == 403


def test_setup_links_emailed_in_the_first_format_still_open_their_own_page(pages, organization, workos):
    expires = int(time.time()) + 29 * 86400
    response = get(f"{pages.url}/setup/{first_format(SECRET, f'{organization}.{expires}', '')}")
    assert response.status_code == 302 and response.headers["location"].startswith(workos.url)
    export = {"run": str(uuid.uuid4()), "customer": "acme.com", "upload": "u1", "expires": expires}
    token = first_format(SECRET, json.dumps(export), "member-export:")
    assert read_link(SECRET, token).customer_key == "acme.com"  # a member-export link still reads


def test_a_token_re_split_between_purpose_and_payload_opens_nothing(pages, organization):
    """Issue 21: the first scheme signed purpose + payload with no separator, so moving a purpose's
    characters into the payload kept the signature valid for the empty purpose (setup links); only the
    purposes' names, which happened not to decode as text, stopped it. Here the purpose is base64url
    text itself ('b3Jn' decodes as 'org'): re-split, the token read as this organization's setup link,
    and on the first scheme the setup page redirected to its portal."""
    purpose = b64(organization[:3].encode())
    assert purpose == "b3Jn"
    token = seal(SECRET, f"{organization[3:]}.{int(time.time()) + 3600}", purpose)
    *version, payload, sig = token.split(".")
    resplit = ".".join([*version, purpose + payload, sig])
    for route in ROUTES.values():
        response = get(f"{pages.url}{route}{resplit}")
        assert response.status_code == 403, (route, response.status_code, response.headers.get("location"))
        assert "location" not in response.headers


@pytest.mark.parametrize(
    "spell",
    [
        lambda p: p + "=",  # padding
        lambda p: p[:4] + "!" + p[4:],  # a character outside the alphabet
        lambda p: p[:4] + "+" + p[5:],  # the other base64 alphabet
    ],
)
def test_a_signed_token_spelled_other_than_canonical_base64url_is_refused(pages, organization, spell):
    """Strict decoding: the first format signed the payload as written, so these tokens carry a valid
    signature; a lenient decoder read them as the canonical one."""
    expires = int(time.time()) + 3600
    payload = spell(b64(f"{organization}.{expires}".encode()))
    token = first_format(SECRET, "", "", raw_payload=payload)
    response = get(f"{pages.url}/setup/{token}")
    assert response.status_code in (403, 404) and "location" not in response.headers


def test_non_canonical_trailing_bits_are_refused():
    assert unb64("YQ") == b"a"
    for text in ("YR", "YQ=", "Y", "YQ==", "Y Q"):
        with pytest.raises(ValueError):
            unb64(text)
    with pytest.raises(LinkError):
        read_link(SECRET, "2.YR.YQ")
