"""API step 1: the customer's WorkOS organization, found before it is ever created.

The SDK's idempotency key is not honoured for organizations, so a create whose answer was lost
must not be retried blindly: we look the organization up again (external id, then domains) first.
"""

from __future__ import annotations

import hashlib
import time

from prefect import get_run_logger, task
from pydantic import BaseModel
from workos import NotFoundError, RateLimitExceededError, ServerError, WorkOSClient, WorkOSError
from workos.organizations.models.organization_domain_data import OrganizationDomainData

from blocks.workos import WorkOSCredentials
from tasks.customer import Customer
from tasks.naming import step_run_name
from tasks.private_apis import WorkOSConnectionError, WorkOSTimeoutError

LOST_ANSWERS = (ServerError, WorkOSConnectionError, WorkOSTimeoutError)


def _answer_lost(exc: WorkOSError) -> bool:
    """A failure after which the organization may exist: a 5xx, no connection, a timeout, or the
    SDK's plain "Network error" (a connection dropped before the answer)."""
    return isinstance(exc, LOST_ANSWERS) or type(exc) is WorkOSError


class WorkOSOrganization(BaseModel):
    id: str
    name: str
    domains: list[str]
    external_id: str | None
    page_url: str
    created: bool  # False: it already existed


class OrganizationConflict(RuntimeError):
    """The customer's domains already belong to a different WorkOS organization."""


EXTERNAL_ID_CHARS = 64  # WorkOS's limit


def external_id_for(customer: Customer) -> str:
    """Our stable name for the customer's organization in WorkOS; a long domain is shortened with a
    hash of it, so the id stays one per customer."""
    external_id = f"10kc-hris-{customer.key}"
    if len(external_id) <= EXTERNAL_ID_CHARS:
        return external_id
    digest = hashlib.sha256(customer.key.encode()).hexdigest()[:12]
    return f"{external_id[: EXTERNAL_ID_CHARS - len(digest) - 1]}-{digest}"


def _same_customer(org, customer: Customer):
    """An organization is reused only when its domains are exactly the customer's."""
    domains = sorted(d.domain.lower() for d in org.domains)
    if domains != sorted(customer.email_domains):
        raise OrganizationConflict(
            f"WorkOS organization {org.id} ({org.name}) has the domains {', '.join(domains) or 'none'}, "
            f"not the customer's {', '.join(customer.email_domains)}; correct the domains in the WorkOS "
            "dashboard or on the form"
        )
    return org


def find_organization(client: WorkOSClient, customer: Customer):
    """The organization for this customer: by our external id, else by any of its domains."""
    try:
        return _same_customer(
            client.organizations.get_organization_by_external_id(external_id_for(customer)), customer
        )
    except NotFoundError:
        pass
    matches = list(client.organizations.list_organizations(domains=customer.email_domains, limit=10).data)
    if len(matches) > 1:
        raise OrganizationConflict(
            f"{len(matches)} WorkOS organizations use the domains {', '.join(customer.email_domains)}: "
            f"{', '.join(m.id for m in matches)}; pick one in the dashboard and remove the others"
        )
    return _same_customer(matches[0], customer) if matches else None


def _describe(org, credentials: WorkOSCredentials, created: bool) -> WorkOSOrganization:
    return WorkOSOrganization(
        id=org.id,
        name=org.name,
        domains=[d.domain for d in org.domains],
        external_id=org.external_id,
        page_url=credentials.organization_page(org.id),
        created=created,
    )


class WorkOSUnavailable(RuntimeError):
    """WorkOS kept failing; a retry of the step is safe (it looks the organization up first)."""


def _gave_up(customer: Customer, attempts: int, exc: Exception) -> WorkOSUnavailable:
    return WorkOSUnavailable(
        f"WorkOS did not create the organization for {customer.company_name} in {attempts} attempts "
        f"({exc.__class__.__name__}: {' '.join(str(exc).split())}); retrying the step is safe"
    )


def ensure_organization(
    credentials: WorkOSCredentials,
    customer: Customer,
    attempts: int = 4,
    client: WorkOSClient | None = None,
) -> WorkOSOrganization:
    """Find the customer's organization or create it (name, domains, authentication from them).

    `client` is the credentials' own SDK client unless given (tests pass one with a short timeout).
    """
    client = client or credentials.get_client()
    for attempt in range(attempts):
        existing = find_organization(client, customer)
        if existing is not None:
            return _describe(existing, credentials, created=False)
        try:
            org = client.organizations.create_organization(
                name=customer.company_name,
                domain_data=[
                    OrganizationDomainData.from_dict({"domain": d, "state": credentials.domain_state})
                    for d in customer.email_domains
                ],
                external_id=external_id_for(customer),
                metadata={"source": "hris-runbook", "tenant_url": customer.tenant_url[:500]},
                request_options={"max_retries": 0},  # a lost answer is handled by looking up again
            )
            return _describe(org, credentials, created=True)
        except RateLimitExceededError as exc:  # refused before acting: wait as asked, then look again
            if attempt == attempts - 1:
                raise _gave_up(customer, attempts, exc) from None
            time.sleep(min(exc.retry_after or 2**attempt, 60))
        except WorkOSError as exc:
            if not _answer_lost(exc):
                raise
            if attempt == attempts - 1:
                raise _gave_up(customer, attempts, exc) from None
            time.sleep(min(2**attempt, 10))
    raise AssertionError("unreachable")


@task(
    name="ensure-workos-organization",
    task_run_name=step_run_name("ensure-workos-organization"),
    retries=2,
    retry_delay_seconds=15,
)
def ensure_organization_task(credentials: WorkOSCredentials, customer: Customer) -> WorkOSOrganization:
    """Idempotent by nature: a retry or a re-run finds the organization made the first time."""
    org = ensure_organization(credentials, customer)
    get_run_logger().info(
        "WorkOS organization %s %s", org.id, "created" if org.created else "already existed"
    )
    return org


def portal_link(credentials: WorkOSCredentials, organization_id: str) -> str:
    """A fresh Directory Sync Admin Portal link; it expires five minutes after issue."""
    return (
        credentials.get_client().admin_portal.generate_link(organization=organization_id, intent="dsync").link
    )
