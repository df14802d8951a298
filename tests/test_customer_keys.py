"""Two customers never share a key: not in inboxes, Variables, once-keys, artifacts or WorkOS."""

from __future__ import annotations

import itertools
import re

import pytest

from tasks.approvals import artifact_key
from tasks.customer import check_domain, key_in_alphabet
from tasks.once import once_key
from tasks.registry import Registration, register, registration, registrations
from tasks.sftp import inbox_path
from tasks.workos import OrganizationConflict, ensure_organization, external_id_for
from tests.conftest import make_customer

DOTTED, DASHED = "acme.co.uk", "acme-co.uk"


def _pair():
    return make_customer(email_domains=[DOTTED]), make_customer(email_domains=[DASHED])


def test_look_alike_domains_get_distinct_keys_everywhere_a_key_is_used():
    dotted, dashed = _pair()
    assert (dotted.key, dashed.key) == (DOTTED, DASHED)
    names = {
        "inbox": lambda c: inbox_path("/inbox", c.key),
        "once-key": lambda c: once_key(c.key, "setup-guides-email"),
        "artifact": lambda c: artifact_key("progress", "sftp-integration", key_in_alphabet(c.key, "-")),
        "variable": lambda c: Registration(customer=c, mode="onboarding", mapping_link="m").variable_name,
        "workos": external_id_for,
    }
    for what, name in names.items():
        assert name(dotted) != name(dashed), what
    variable = names["variable"](dashed)
    assert re.fullmatch(r"[a-z0-9_]+", variable), variable
    assert re.fullmatch(r"[a-z0-9-]+", names["artifact"](dashed))


def test_the_dotless_forms_of_every_short_domain_are_all_different():
    """Exhaustive over 'a', '-' and '.' up to 9 characters: every valid domain, every pair."""
    domains = set()
    for length in range(3, 10):
        for chars in itertools.product("a-.", repeat=length):
            try:
                domains.add(check_domain("".join(chars)))
            except ValueError:
                continue
    assert len(domains) > 100
    for separator in "_-":
        assert len({key_in_alphabet(d, separator) for d in domains}) == len(domains)


def test_a_long_domain_still_gives_a_workos_external_id_within_64_characters():
    long_one = make_customer(email_domains=["a" * 60 + ".example.com"])
    long_two = make_customer(email_domains=["a" * 60 + ".example.org"])
    assert len(external_id_for(long_one)) <= 64
    assert external_id_for(long_one) != external_id_for(long_two)


def test_each_look_alike_customer_gets_its_own_workos_organization(workos, workos_credentials):
    dotted, dashed = _pair()
    first = ensure_organization(workos_credentials, dotted)
    second = ensure_organization(workos_credentials, dashed)
    assert first.created and second.created and first.id != second.id
    assert sorted(o["external_id"] for o in workos.organizations.values()) == sorted(
        [external_id_for(dotted), external_id_for(dashed)]
    )
    assert ensure_organization(workos_credentials, dashed).id == second.id  # found again, not a third


def test_an_organization_whose_domains_differ_is_not_reused(workos, workos_credentials):
    dotted, dashed = _pair()
    org = ensure_organization(workos_credentials, dotted)
    # Someone (or an older key format) gave the first customer's organization the second one's id.
    workos.organizations[org.id]["external_id"] = external_id_for(dashed)
    with pytest.raises(OrganizationConflict) as caught:
        ensure_organization(workos_credentials, dashed)
    message = str(caught.value)
    assert org.id in message and DOTTED in message and DASHED in message and "\n" not in message
    assert len(workos.organizations) == 1  # nothing created, nothing reused


def test_an_organization_found_by_one_shared_domain_is_not_reused(workos, workos_credentials):
    dotted = make_customer(email_domains=[DOTTED])
    ensure_organization(workos_credentials, dotted)
    both = make_customer(email_domains=[DASHED, DOTTED])  # a form that lists someone else's domain too
    with pytest.raises(OrganizationConflict, match="acme-co.uk"):
        ensure_organization(workos_credentials, both)
    assert len(workos.organizations) == 1


def test_look_alike_customers_are_registered_side_by_side(clean_registrations):
    dotted, dashed = _pair()
    for customer in (dotted, dashed):
        register(Registration(customer=customer, mode="onboarding", mapping_link=f"map-{customer.key}"))
    assert sorted(r.customer.key for r in registrations()) == sorted([DOTTED, DASHED])
    assert registration(DASHED).mapping_link == f"map-{DASHED}"
    assert registration(DOTTED).mapping_link == f"map-{DOTTED}"
