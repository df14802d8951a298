"""Setup links: a valid token redirects to a fresh portal link; anything else gets a 4xx page."""

from __future__ import annotations

import time

import httpx
import pytest

from blocks import WorkOSCredentials
from tasks.customer import Customer
from tasks.setup_links import make_setup_link, sign, workos_portal_links
from tasks.workos import ensure_organization
from tests.conftest import SETUP_LINKS_SECRET, ServerThread, make_customer
from webapp.app import create_app
from webapp.setup_links import CLICKS_PER_MINUTE, routes

SECRET = SETUP_LINKS_SECRET


@pytest.fixture
def organization(workos_credentials) -> str:
    customer: Customer = make_customer()
    return ensure_organization(workos_credentials, customer).id


def get(url: str) -> httpx.Response:
    return httpx.get(url, follow_redirects=False, timeout=10, trust_env=False)


def test_a_valid_link_redirects_to_a_fresh_directory_sync_portal_link(
    workos, workos_credentials, organization
):
    link = make_setup_link(workos_credentials.setup_links_url, SECRET, organization, days=30)
    first, second = get(link), get(link)
    assert first.status_code == second.status_code == 302
    assert first.headers["location"] != second.headers["location"]  # generated anew on each click
    assert first.headers["location"].startswith(f"{workos.url}/portal/launch?secret=")
    assert [p["intent"] for p in workos.portal_links.values()] == ["dsync", "dsync"]
    portal = get(first.headers["location"])
    assert portal.status_code == 200 and "dsync" in portal.text


def test_a_link_keeps_working_after_the_five_minute_portal_expiry(workos, workos_credentials, organization):
    link = make_setup_link(workos_credentials.setup_links_url, SECRET, organization, days=30)
    old_portal = get(link).headers["location"]
    for record in workos.portal_links.values():
        record["issued"] -= 301  # the first portal link is now past WorkOS's five minutes
    assert get(old_portal).status_code == 410
    fresh = get(link)
    assert fresh.status_code == 302 and get(fresh.headers["location"]).status_code == 200


def test_an_expired_link_gets_a_410_page(workos_credentials, organization):
    link = make_setup_link(
        workos_credentials.setup_links_url, SECRET, organization, days=1, now=time.time() - 2 * 86400
    )
    response = get(link)
    assert response.status_code == 410 and "expired" in response.text and "location" not in response.headers


def test_a_tampered_link_gets_a_403_page(workos_credentials, organization):
    token = sign(SECRET, organization, int(time.time()) + 3600)
    version, payload, signature = token.split(".")
    other = sign(SECRET, "org_someone_else", int(time.time()) + 3600).split(".")[1]
    for bad in (
        f"{version}.{other}.{signature}",
        f"{version}.{payload}.{signature[:-2]}xx",
        f"{version}.{payload}",
        f"{payload}.{signature}",  # the new signature in the first format
        payload,
        "garbage",
    ):
        response = get(f"{workos_credentials.setup_links_url}/setup/{bad}")
        assert response.status_code == 403 and "location" not in response.headers


def test_a_link_signed_with_another_secret_gets_a_403(workos_credentials, organization):
    other_secret = "another-secret-of-at-least-32-bytes"
    link = make_setup_link(workos_credentials.setup_links_url, other_secret, organization, days=30)
    assert get(link).status_code == 403


def test_a_link_for_an_unknown_organization_gets_a_404_page(workos_credentials):
    link = make_setup_link(
        workos_credentials.setup_links_url, SECRET, "org_00000000000000000000000099", days=30
    )
    response = get(link)
    assert response.status_code == 404 and "location" not in response.headers


def test_a_token_with_non_ascii_characters_gets_a_403_page(workos_credentials, organization):
    version, payload, signature = sign(SECRET, organization, int(time.time()) + 3600).split(".")
    for bad in (f"2.{payload}.{signature[:-1]}é", f"2.é{payload}.{signature}", "ü", "€.€", "2.€.€"):
        response = get(f"{workos_credentials.setup_links_url}/setup/{bad}")
        assert response.status_code == 403 and "not valid" in response.text


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_a_signing_secret_under_32_bytes_is_refused_by_the_block_and_at_app_start(secret):
    with pytest.raises(ValueError, match="at least 32 bytes") as refused:
        WorkOSCredentials(
            api_key="sk_test_123", setup_links_url="http://links.example", setup_links_secret=secret
        )
    assert not secret or secret not in str(refused.value)  # never echo the secret
    with pytest.raises(ValueError, match="at least 32 bytes"):
        routes(secret, lambda organization_id: None)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        make_setup_link("http://links.example", secret, "org_1", days=1)


def test_clicks_over_the_per_link_limit_get_a_429_page_and_do_not_call_workos(
    workos, workos_credentials, organization
):
    link = make_setup_link(workos_credentials.setup_links_url, SECRET, organization, days=30)
    answers = [get(link) for _ in range(CLICKS_PER_MINUTE + 2)]
    assert [a.status_code for a in answers] == [302] * CLICKS_PER_MINUTE + [429, 429]
    assert len(workos.portal_links) == CLICKS_PER_MINUTE  # the refused clicks never reached WorkOS
    refused = answers[-1]
    assert "try again in a minute" in refused.text and int(refused.headers["retry-after"]) <= 60
    other_link = make_setup_link(workos_credentials.setup_links_url, SECRET, organization, days=29)
    assert get(other_link).status_code == 302  # the limit is per link


def test_a_rate_limited_link_works_again_after_a_minute(workos, workos_credentials, organization):
    now = [1000.0]
    server = ServerThread(
        create_app(
            routes(SECRET, workos_portal_links(workos_credentials), clicks_per_minute=2, clock=lambda: now[0])
        )
    )
    try:
        link = make_setup_link(server.url, SECRET, organization, days=30)
        assert [get(link).status_code for _ in range(3)] == [302, 302, 429]
        now[0] += 30
        assert get(link).status_code == 429
        now[0] += 31
        assert get(link).status_code == 302
    finally:
        server.stop()
