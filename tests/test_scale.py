"""Past one machine: Prefect on PostgreSQL, once-locks in Redis, two workers, 30 customers at once.

Its own Prefect server (not the session's SQLite one), PostgreSQL and Redis from the Debian
packages on free ports; skipped only when those are not installed (failed under CI=true).
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from benchmarks import load_driver, scale, services
from tasks.once import once_key, record_key
from tests.conftest import require

CUSTOMERS = 30


@pytest.fixture(scope="module")
def stack():
    """Prefect server on PostgreSQL, locks in Redis, two process workers with separate homes (each
    takes at most 10 runs at a time, so both must work)."""
    missing = services.missing_services()
    require(
        not missing,
        f"the scale test needs {', '.join(missing)} (apt-get install postgresql redis-server)",
    )
    with services.postgres() as database_url, services.redis() as redis_url:
        with scale.prefect_stack(database_url, redis_url, workers=2, limit=10) as running:
            running.redis_url = redis_url
            yield running


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """SMTP, Slack and WorkOS stand-ins: what the 30 customers' runs send and create."""
    from sandbox.slack import SlackStandIn
    from sandbox.smtp import start_smtp
    from sandbox.workos import WorkOSStandIn

    smtp = start_smtp(tmp_path_factory.mktemp("scale-mail"), services.free_port())
    # no per-channel post rate here: 30 runs notify at once, and this measures the workers, not Slack
    slack, workos = SlackStandIn(post_interval=0).start(), WorkOSStandIn().start()
    for channel in ("am-load", "product-support", "monitoring-hris-files"):
        slack.add_channel(channel)
    slack.add_user("casey@10kc.example")
    try:
        yield smtp, slack, workos
    finally:
        for stand_in in (smtp, slack, workos):
            stand_in.stop()


@pytest.fixture(scope="module")
def load(stack, stand_ins):
    """30 setup-guides runs at once, every customer choosing the API path; then each api-integration
    run they started is approved at its WorkOS gate and runs on to its email gate."""
    smtp, slack, workos = stand_ins
    with scale.api(stack.api_url):
        scale.save_smtp_block(smtp.port)
        scale.save_api_integration_blocks(slack.url, workos.url)
        customers, result = load_driver.run_setup_guides(CUSTOMERS, timeout=900, choice="api")
        api_runs = load_driver.runs_of("api-integration", customers)
        api = load_driver.answer_gates(
            api_runs,
            {"workos-organization": load_driver.APPROVE},
            timeout=900,
            stop_at="api-implementation-email",
        )
    return customers, result, smtp.handler.messages(), api, list(workos.organizations.values())


@pytest.mark.timeout(1800)  # the stack, then 30 customers through setup-guides and into api-integration
@pytest.mark.postgres  # and Redis: the scale stack
def test_thirty_customers_on_two_workers_each_get_exactly_one_email(stack, load):
    customers, result, messages, _, _ = load
    assert result.errors == []
    assert result.completed == CUSTOMERS, result.final
    assert result.failed_starts == 0 and result.failed_resumes == 0
    assert len(result.resume_to_next) == 2 * CUSTOMERS  # both gates of every run answered once
    received = Counter(m["To"] for m in messages)
    assert received == Counter({c.contact_email: 1 for c in customers})
    assert all("Connecting Workday to 10KC" in m["Subject"] for m in messages)


@pytest.mark.postgres  # and Redis: the scale stack
def test_each_customer_gets_exactly_one_workos_organization(load):
    customers, _, _, api, organizations = load
    assert api.errors == [] and api.failed_resumes == 0
    assert api.final == Counter({"WAITING AT api-implementation-email": CUSTOMERS})  # all went on past it
    domains = Counter(domain["domain"] for org in organizations for domain in org["domains"])
    assert domains == Counter({c.email_domains[0]: 1 for c in customers})
    assert len(organizations) == CUSTOMERS


@pytest.mark.postgres  # and Redis: the scale stack
def test_both_workers_ran_flows_and_nothing_hit_a_locked_database(stack, load):
    log = stack.log_text()
    assert "database is locked" not in log
    for worker in ("worker-1", "worker-2"):
        runs = re.findall(r"submitted to infrastructure", (stack.logs / f"{worker}.log").read_text())
        assert runs, f"{worker} ran no flow run"


@pytest.mark.postgres  # and Redis: the scale stack
def test_once_records_are_on_shared_storage_and_locks_in_redis(stack, load):
    import redis

    customers, *_ = load
    for customer in customers:
        record = stack.storage / record_key(once_key(customer.key, "setup-guides-email"))
        assert json.loads(json.loads(record.read_text())["result"])["kind"] == "sent-email", customer.key
    commands = redis.Redis.from_url(stack.redis_url).info("commandstats")
    assert commands["cmdstat_set"]["calls"] >= CUSTOMERS  # each email step locked through Redis


def test_a_database_url_that_is_not_postgresql_is_a_clear_error():
    from cli.stack import database_settings

    assert database_settings(None) == {}
    assert database_settings("postgresql+asyncpg://u:p@db:5432/prefect") == {
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": "postgresql+asyncpg://u:p@db:5432/prefect"
    }
    with pytest.raises(
        SystemExit, match=r"HRIS_DATABASE_URL: expected postgresql\+asyncpg://.*got mysql://…$"
    ):
        database_settings("mysql://root:secret@db/prefect")  # the password is not repeated


def test_redis_locks_without_prefect_redis_installed_say_what_to_install(monkeypatch):
    import sys

    from tasks.once import lock_manager

    monkeypatch.setenv("HRIS_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setitem(sys.modules, "prefect_redis.locking", None)  # as if the extra were not installed
    with pytest.raises(RuntimeError, match=r"pip install 'hris-runbook\[scale\]'"):
        lock_manager()
