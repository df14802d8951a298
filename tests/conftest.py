"""One Prefect test server per session, and the stand-ins each test talks to.

PREFECT_HOME points at a fresh temp dir *before* Prefect is imported, so results cached by an
earlier run can never make an email look "already sent".
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_HOME = tempfile.mkdtemp(prefix="hris-tests-")
os.environ["PREFECT_HOME"] = _HOME
os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(Path(_HOME) / "storage")
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_TO_API_BATCH_INTERVAL"] = "0.3"
os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"

import pytest  # noqa: E402

from tasks.customer import Customer  # noqa: E402


def pytest_collection_modifyitems(items):
    """Markers from what a test needs, so they cannot drift from it (registered in pyproject.toml):
    browser (chromium), sshd (a server that should be OpenSSH), postgres (set on the scale tests),
    slow (a Prefect server, a browser, PostgreSQL, or a fault case that waits out a client timeout or
    a Retry-After; a few more by hand): `pytest -m "not slow"` is the quick loop."""
    for item in items:
        needs = set(item.fixturenames)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "browser" in needs:
            item.add_marker(pytest.mark.browser)
        if "sftp_server" in needs and params.get("sftp_server", "openssh") == "openssh":
            item.add_marker(pytest.mark.sshd)
        waits_out = params.get("fault") in ("hang", "timeout_after_acting", "rate_limit")
        if needs & {"prefect_api", "browser"} or item.get_closest_marker("postgres") or waits_out:
            item.add_marker(pytest.mark.slow)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """`count` different free ports, for servers that bind them later: each socket stays open until
    all are picked, so the kernel never hands out the same port twice (free_port() in a row can)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_until(predicate, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail the test with `what` if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


IN_CI = os.environ.get("CI", "").lower() == "true"


def require(installed: bool, what: str) -> None:
    """Skip a test whose system dependency is missing, but fail it under CI=true: a CI run that
    skipped it would be green without having tested anything."""
    if installed:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {what}", pytrace=False)
    pytest.skip(what)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    """Debian's chromium driven by Playwright (never a downloaded browser build)."""
    require(
        os.path.exists(CHROMIUM),
        f"{CHROMIUM} is not installed (apt-get install chromium); no browser is downloaded",
    )
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # `expect(...)` waits for its condition up to this (default 5 s)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def make_up_server_class():
    """Prefect's test-harness server, run as `make up` runs its server: every SQLite transaction takes
    the write lock first (cli/prefect_server.py), so a Resume under load waits instead of getting 503."""
    import subprocess

    from prefect.server.api.server import SubprocessASGIServer

    class MakeUpServer(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen:
            # Prefect's own command (pinned in tests/test_private_apis.py), with our app factory
            from prefect.settings import get_current_settings

            server_env = {
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
            }
            return subprocess.Popen(
                args=[
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "cli.prefect_server:create_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "error",
                    "--lifespan",
                    "on",
                ],  # fmt: skip
                cwd=ROOT,
                env={
                    **os.environ,
                    **server_env,
                    **get_current_settings().to_environment_variables(exclude_unset=True),
                },
            )

    return MakeUpServer


@pytest.fixture(scope="session")
def prefect_api(pytestconfig):
    """A temporary Prefect server (SQLite) for the whole session, started as `make up` starts its
    server (SQLite writes wait their turn); yields its API URL."""
    import prefect.testing.utilities as harness
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    harness.SubprocessASGIServer = make_up_server_class()  # the harness builds its server from this name
    with prefect_test_harness(server_startup_timeout=90):
        set_wait_settings(poll_seconds=0.2, remind_after_hours=1)
        pytestconfig.stash[SHARED_SERVER] = True
        try:
            yield PREFECT_API_URL.value()
        finally:
            pytestconfig.stash[SHARED_SERVER] = False


SHARED_SERVER = pytest.StashKey[bool]()
UNFINISHED = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")


def unfinished_runs() -> list:
    """Flow runs on the session's server that have not reached a final state."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(UNFINISHED)))
            )
        )


def cancel_runs(runs: list, timeout: float = 60) -> None:
    """Cancel as a CSM would (the served runner stops a running process); force what does not end."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Cancelling

    with get_client(sync_client=True) as client:
        for run in runs:
            if run.deployment_id is None:  # in-process: no runner would act on Cancelling
                client.set_flow_run_state(run.id, Cancelled(message="test teardown"), force=True)
            else:
                client.set_flow_run_state(run.id, Cancelling(message="test teardown"))
        ids = {run.id for run in runs}

        def all_final():
            return not [r for r in unfinished_runs() if r.id in ids]

        try:
            wait_until(all_final, timeout=timeout, interval=0.5, what="the test's runs to be cancelled")
        except AssertionError:
            for run in unfinished_runs():
                if run.id in ids:
                    client.set_flow_run_state(run.id, Cancelled(message="test teardown"), force=True)


@pytest.fixture(autouse=True)
def cancel_what_the_test_started(pytestconfig):
    """Every test cancels the flow runs it started and left unfinished: on the one shared server a
    leftover Suspended run would be reminded, counted or answered by a later test."""
    before = {run.id for run in unfinished_runs()} if pytestconfig.stash.get(SHARED_SERVER, False) else set()
    yield
    if pytestconfig.stash.get(SHARED_SERVER, False):
        cancel_runs([run for run in unfinished_runs() if run.id not in before])


def set_wait_settings(**settings) -> None:
    """Every gate's timing (the `hris_wait_settings` Variable): tests poll fast, remind when they say."""
    from prefect.variables import Variable

    from tasks.approvals import WAIT_SETTINGS_VARIABLE, WaitSettings

    Variable.set(WAIT_SETTINGS_VARIABLE, WaitSettings(**settings).model_dump(), overwrite=True)


@pytest.fixture
def reminders_every_second(prefect_api):
    """Gates remind after one second of waiting, for this test only."""
    set_wait_settings(poll_seconds=0.2, remind_after_hours=1 / 3600)
    yield
    set_wait_settings(poll_seconds=0.2, remind_after_hours=1)


@pytest.fixture
def smtp_server(tmp_path):
    """The SMTP stand-in on a free loopback port; `.handler.messages()` lists what it received."""
    from sandbox.smtp import start_smtp

    controller = start_smtp(tmp_path / "mail", free_port())
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def smtp_block(prefect_api, smtp_server):
    """The `default` SmtpServer block, pointing at this test's SMTP stand-in."""
    from blocks import SmtpServer

    block = SmtpServer(
        host="127.0.0.1",
        port=smtp_server.port,
        security="none",
        from_address="10KC Customer Success <cs@10kc.example>",
        default_cc=["hris-team@10kc.example"],
    )
    block.save("default", overwrite=True)
    yield block
    delete_block(SmtpServer, "default")  # a later test's run would mail a stand-in that is gone


def make_customer(platform: str = "Workday", **overrides) -> Customer:
    """A customer with a unique domain, so no test sees another test's once-only records."""
    domain = f"acme-{uuid.uuid4().hex[:8]}.com"
    values = dict(
        company_name="Acme Corp",
        contact_first_name="Dana",
        contact_email=f"dana.admin@{domain}",
        platform=platform,
        email_domains=[domain],
        tenant_url="https://acme.10kc.example",
        hub_url="https://acme.10kc.example/hub/main",
        csm={"name": "Casey Success", "email": "casey@10kc.example"},
        implementation_manager={"name": "Imani Manager", "email": "imani@10kc.example"},
        slack_channel="#am-acme",
    )
    values.update(overrides)
    return Customer(**values)


@pytest.fixture
def slack():
    """The Slack stand-in with the runbook's channels (listed two per page, so paging is real)."""
    from sandbox.slack import SlackStandIn

    stand_in = SlackStandIn(token="xoxb-test").start()
    for name in ["general", "random", "am-acme", "product-support", "monitoring-hris-files"]:
        stand_in.add_channel(name)
    stand_in.add_channel("secret-room", bot_is_member=False)
    stand_in.add_user("casey@10kc.example")
    try:
        yield stand_in
    finally:
        stand_in.stop()


@pytest.fixture
def slack_workspace(slack):
    from blocks import SlackWorkspace

    return SlackWorkspace(bot_token="xoxb-test", base_url=f"{slack.url}/api/", max_retries=3)


@pytest.fixture
def slack_block(prefect_api, slack_workspace):
    """The `default` SlackWorkspace block, pointing at this test's Slack stand-in (removed afterwards)."""
    slack_workspace.save("default", overwrite=True)
    yield slack_workspace
    delete_block(type(slack_workspace), "default")


def delete_block(block_type, name: str) -> None:
    """Remove a saved block document so later tests run without it."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document_by_name(name, block_type.get_block_type_slug())
        except ObjectNotFound:
            return
        client.delete_block_document(document.id)


@pytest.fixture
def sheets():
    """The Google Sheets stand-in (token endpoint, metadata, values)."""
    from sandbox.sheets import SheetsStandIn

    stand_in = SheetsStandIn().start()
    try:
        yield stand_in
    finally:
        stand_in.stop()


@pytest.fixture
def sheets_credentials(sheets):
    import json

    from blocks.google_sheets import GoogleSheetsCredentials
    from sandbox.sheets import make_service_account

    info = make_service_account(token_uri=f"{sheets.url}/token")
    return GoogleSheetsCredentials(
        service_account_info=json.dumps(info), api_base_url=sheets.url, max_retries=2
    )


@pytest.fixture
def hub():
    """The hub admin API stand-in."""
    from sandbox.hub import HubStandIn

    stand_in = HubStandIn(token="hub-test").start()
    try:
        yield stand_in
    finally:
        stand_in.stop()


@pytest.fixture
def hub_block(prefect_api, hub):
    """The `default` 10KC Hub block, pointing at this test's stand-in (removed afterwards)."""
    from blocks import TenKCHub

    block = TenKCHub(api_token="hub-test", base_url_override=hub.url)
    block.save("default", overwrite=True)
    yield block
    delete_block(TenKCHub, "default")


@pytest.fixture
def workos():
    """The WorkOS API stand-in."""
    from sandbox.workos import WorkOSStandIn

    stand_in = WorkOSStandIn(api_key="sk_test_123").start()
    try:
        yield stand_in
    finally:
        stand_in.stop()


class ServerThread:
    """A uvicorn server for an ASGI app on a free loopback port, in a thread."""

    def __init__(self, app):
        import threading

        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=60, interval=0.01, what="the ASGI server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


SETUP_LINKS_SECRET = "test-secret-0123456789-abcdefghijklmnop"  # links need >= 32 bytes


@pytest.fixture
def workos_credentials(workos):
    """WorkOS credentials for the stand-in, with a running setup-links endpoint."""
    from blocks import WorkOSCredentials
    from tasks.setup_links import workos_portal_links
    from webapp.app import create_app
    from webapp.setup_links import routes

    credentials = WorkOSCredentials(
        api_key="sk_test_123",
        base_url=workos.url,
        setup_links_url="http://placeholder",
        setup_links_secret=SETUP_LINKS_SECRET,
    )
    server = ServerThread(create_app(routes(SETUP_LINKS_SECRET, workos_portal_links(credentials))))
    credentials.setup_links_url = server.url
    try:
        yield credentials
    finally:
        server.stop()


@pytest.fixture
def workos_block(prefect_api, workos_credentials):
    workos_credentials.save("default", overwrite=True)
    yield workos_credentials
    from blocks import WorkOSCredentials

    delete_block(WorkOSCredentials, "default")


@pytest.fixture
def sheets_block(prefect_api, sheets_credentials):
    sheets_credentials.save("default", overwrite=True)
    yield sheets_credentials
    from blocks import GoogleSheetsCredentials

    delete_block(GoogleSheetsCredentials, "default")


@pytest.fixture(scope="session")
def served(prefect_api, tmp_path_factory):
    """The runbook's flows served as deployments by a subprocess polling the test server every second."""
    import subprocess
    import sys

    from prefect.client.orchestration import get_client

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PREFECT_API_URL=prefect_api, PREFECT_RUNNER_POLL_FREQUENCY="1")
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.serve_flows"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT
    )

    from tests.serve_flows import DEPLOYMENTS

    def deployed():
        with get_client(sync_client=True) as client:
            try:
                return all(client.read_deployment_by_name(name) for name in DEPLOYMENTS)
            except Exception:
                return None

    try:
        wait_until(deployed, timeout=90, what="the served deployments")
        yield log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a busy machine's runner still stopping its flow runs
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def sftp_server(request, tmp_path):
    """A real SFTP server on loopback serving tmp/inbox: OpenSSH sshd when installed, else asyncssh
    (parametrize indirectly with "asyncssh" to test that server too). Under CI=true a test that
    asked for OpenSSH fails unless it runs on OpenSSH."""
    from sandbox.sftp import start_sftp_server

    prefer = getattr(request, "param", "openssh")
    server = start_sftp_server(tmp_path / "inbox", keys_dir=tmp_path / "sftp-keys", prefer=prefer)
    if IN_CI and server.kind != prefer:
        server.stop()
        pytest.fail(f"CI=true and the test asked for OpenSSH, but {server.fallback}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sftp_block(prefect_api, sftp_server):
    from blocks import SftpServer

    block = sftp_server.block(max_upload_mb=1, connect_timeout_seconds=5)
    block.save("default", overwrite=True)
    yield block
    delete_block(SftpServer, "default")


@pytest.fixture
def clean_registrations(prefect_api):
    """No customer registered for watching before or after the test."""
    from tasks.registry import registrations, unregister

    for reg in registrations():
        unregister(reg.customer.key)
    yield
    for reg in registrations():
        unregister(reg.customer.key)
