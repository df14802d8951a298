"""The customer's WorkOS organization: found before created, never twice, through the real SDK."""

from __future__ import annotations

from sandbox.http import Response
from tasks.workos import ensure_organization, external_id_for
from tests.conftest import make_customer


def test_the_organization_is_created_once_with_its_domains(workos, workos_credentials):
    customer = make_customer(email_domains=["acme-one.example", "acme-two.example"])
    first = ensure_organization(workos_credentials, customer)
    again = ensure_organization(workos_credentials, customer)

    assert first.created and not again.created and again.id == first.id
    [org] = workos.organizations.values()
    assert org["name"] == "Acme Corp"
    assert [(d["domain"], d["state"]) for d in org["domains"]] == [
        ("acme-one.example", "verified"),
        ("acme-two.example", "verified"),
    ]
    assert org["external_id"] == external_id_for(customer)
    assert first.page_url == f"https://dashboard.workos.com/organizations/{first.id}"
    assert len(workos.calls("^/organizations$")) == 2  # a domain lookup, then the one create


def test_an_organization_made_in_the_dashboard_is_found_by_domain(workos, workos_credentials):
    customer = make_customer()
    workos.organizations["org_manual"] = {
        "object": "organization", "id": "org_manual", "name": "Acme (manual)", "external_id": None, "metadata": {},
        "domains": [{"object": "organization_domain", "id": "od_1", "organization_id": "org_manual", "domain": customer.email_domains[0],
                     "state": "verified", "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"}],
        "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
    }  # fmt: skip
    found = ensure_organization(workos_credentials, customer)
    assert found.id == "org_manual" and not found.created
    assert len(workos.organizations) == 1


def test_a_create_whose_answer_was_lost_is_looked_up_not_repeated(workos, workos_credentials):
    customer = make_customer()
    workos.lose_next_answer("^/organizations$")  # WorkOS creates it, the answer never arrives
    org = ensure_organization(workos_credentials, customer)
    assert len(workos.organizations) == 1
    assert not org.created  # found on the second look
    assert len([r for r in workos.calls("^/organizations$") if r.method == "POST"]) == 1


def test_rate_limits_are_retried_after_retry_after(workos, workos_credentials):
    workos.fail_next(
        "/organizations/external_id/", Response(429, {"message": "slow down"}, headers={"Retry-After": "1"})
    )
    org = ensure_organization(workos_credentials, make_customer())
    assert org.created and len(workos.calls("/organizations/external_id/")) == 2
