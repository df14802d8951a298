"""WorkOS faults on the create call of API step 1 (tasks/workos.py ensure_organization), through the
real SDK: whatever happens to the create, the customer ends with exactly one organization."""

from __future__ import annotations

import pytest
from workos import WorkOSClient

from tasks.workos import WorkOSUnavailable, ensure_organization, external_id_for
from tests.conftest import make_customer

FAULTS = ["rate_limit", "server_error", "hang", "drop", "lost_answer"]


@pytest.mark.parametrize("fault", FAULTS)
def test_the_organization_exists_once_whatever_happens_to_the_create(workos, workos_credentials, fault):
    customer = make_customer()
    client = WorkOSClient(api_key="sk_test_123", base_url=workos.url, request_timeout=1)
    workos.inject("^/organizations$", fault, method="POST", hang_seconds=3)

    org = ensure_organization(workos_credentials, customer, client=client)

    assert workos.faults_served == [(fault, "POST", "/organizations")]
    [stored] = workos.organizations.values()
    assert stored["id"] == org.id and stored["external_id"] == external_id_for(customer)
    creates = [r for r in workos.calls("^/organizations$") if r.method == "POST"]
    # acted on and lost: found by the lookup, not created again; otherwise created by the retry
    assert len(creates) == (1 if fault == "lost_answer" else 2)
    assert org.created == (fault != "lost_answer")


def test_a_create_that_keeps_failing_ends_with_one_clear_line_and_no_organization(workos, workos_credentials):
    client = WorkOSClient(api_key="sk_test_123", base_url=workos.url, request_timeout=1)
    workos.inject("^/organizations$", "server_error", times=10, method="POST")

    with pytest.raises(WorkOSUnavailable) as failure:
        ensure_organization(workos_credentials, make_customer(), attempts=2, client=client)
    assert str(failure.value) == (
        "WorkOS did not create the organization for Acme Corp in 2 attempts "
        "(ServerError: HTTP 503: injected fault: internal_error (error=internal_error)); retrying the step is safe"
    )
    assert workos.organizations == {}
    assert len([r for r in workos.calls("^/organizations$") if r.method == "POST"]) == 2
