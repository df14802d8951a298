"""Setup links: a valid token redirects to a fresh portal link; anything else gets a 4xx page."""

from __future__ import annotations

import time

import httpx
import pytest

from tasks.customer import Customer
from tasks.setup_links import make_setup_link, sign
from tasks.workos import ensure_organization
from tests.conftest import make_customer

SECRET = "test-secret-0123456789"


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
    payload, signature = token.split(".")
    other = sign(SECRET, "org_someone_else", int(time.time()) + 3600).split(".")[0]
    for bad in (f"{other}.{signature}", f"{payload}.{signature[:-2]}xx", payload, "garbage"):
        response = get(f"{workos_credentials.setup_links_url}/setup/{bad}")
        assert response.status_code == 403 and "location" not in response.headers


def test_a_link_signed_with_another_secret_gets_a_403(workos_credentials, organization):
    link = make_setup_link(workos_credentials.setup_links_url, "another-secret", organization, days=30)
    assert get(link).status_code == 403


def test_a_link_for_an_unknown_organization_gets_a_404_page(workos_credentials):
    link = make_setup_link(
        workos_credentials.setup_links_url, SECRET, "org_00000000000000000000000099", days=30
    )
    response = get(link)
    assert response.status_code == 404 and "location" not in response.headers
