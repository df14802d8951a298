"""Going live, end to end: every block real (pointed at the stand-ins as if they were the real systems),
`hris-runbook up --production` runs doctor, deploys and starts the worker; an API customer and an SFTP
customer then go all the way through, and nothing from sandbox/ was saved or started by the stack."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import copy_context
from pathlib import Path

import httpx
import pytest

from tasks.contracts import API_INTEGRATION, SFTP_INTEGRATION
from tests import golive
from tests.conftest import ServerThread, free_ports, make_customer, wait_until
from tests.test_make_up import Stack, _all_gone

ROOT = Path(__file__).resolve().parent.parent
CSM = {"approver": "Casey Success"}
API_KEY = "1GoLiveApiMappingSheet00000000000000000"
SFTP_KEY = "1GoLiveSftpMappingSheet0000000000000000"
TABLE = [
    ["Category", "HRIS Field", "HRIS Values", "Notes", "10KC Segment", "10KC Value", "Visibility"],
    ["Org", "Department", "Engineering", "", "", "", "Public"],
    ["", "", "Sales", "", "", "", ""],
]
SAMPLE = (
    "Email,First Name,Last Name,Employee Status,Department\r\nann@acme.example,Ann,Lee,active,Engineering\r\n"
)
PRODUCTION = SAMPLE + "new@acme.example,New,Hire,active,Sales\r\nbo@acme.example,Bo,Day,inactive,Sales\r\n"


def link(key: str) -> str:
    return f"https://docs.google.com/spreadsheets/d/{key}/edit"


@pytest.fixture
def stack_env(tmp_path):
    """The environment of `make up` on a machine of its own: its server, web app and state dirs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    prefect, links, internal = free_ports(3)  # bound later, by the server and by `up`
    env.update(
        HRIS_PREFECT_PORT=str(prefect),
        HRIS_STATE_DIR=str(tmp_path / "prefect"),
        HRIS_SANDBOX_DIR=str(tmp_path / "sandbox"),  # nothing may be made there
        HRIS_SETUP_LINKS_PORT=str(links),
        HRIS_WEB_INTERNAL_PORT=str(internal),
        PREFECT_WORKER_QUERY_SECONDS="1",
    )
    return env


@contextmanager
def prefect_server_alone(env: dict[str, str]):
    """`prefect server start` on the stack's state dir and port, as docs/operations.md has an operator
    start it on a fresh install to save the blocks in its UI; this process talks to it meanwhile."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from cli.stack import healthy

    home, port = Path(env["HRIS_STATE_DIR"]), env["HRIS_PREFECT_PORT"]
    home.mkdir(parents=True, exist_ok=True)
    with (home / "configure-server.log").open("wb") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "prefect"), "server", "start", "--port", port],
            cwd=ROOT, env=env | {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_until(lambda: healthy(api), timeout=180, interval=1, what="the Prefect server")
        with temporary_settings({PREFECT_API_URL: api}):
            yield api
    finally:
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture
def operator_config(stack_env, smtp_server, slack, sheets, workos, sftp_server, hub):
    """What docs/operations.md asks before going live, through the API the UI uses: every block saved
    (the real block types, at the stand-ins) and every Help Center link real; the server stopped after."""
    from prefect.variables import Variable

    from blocks import WorkOSCredentials
    from tasks.steps import HELP_CENTER_VARIABLE
    from tests.conftest import SETUP_LINKS_SECRET

    public = f"http://127.0.0.1:{stack_env['HRIS_SETUP_LINKS_PORT']}"  # the web app `up` starts
    workos_block = WorkOSCredentials(
        api_key="sk_test_123",
        base_url=workos.url,
        setup_links_url=public,
        setup_links_secret=SETUP_LINKS_SECRET,
    )
    blocks = golive.blocks_at(smtp_server, slack, sheets, workos_block, sftp_server, hub)
    help_center = ServerThread(golive.help_center_app())
    with prefect_server_alone(stack_env):
        golive.save(blocks)
        Variable.set(HELP_CENTER_VARIABLE, golive.help_center_links(help_center.url), overwrite=True)
    try:
        yield blocks
    finally:
        help_center.stop()


@pytest.mark.timeout(1800)  # ~7 min at load 11 on 2 cores, 12 at load 30; every wait is on an event
@pytest.mark.slow  # its own Prefect server, deployments and worker
def test_up_production_on_real_blocks_runs_an_api_and_an_sftp_customer_to_the_end(
    operator_config, stack_env, smtp_server, slack, sheets, workos, sftp_server, hub
):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from blocks import GoogleSheetsCredentials, WebApp

    links_url = operator_config[WebApp].url
    reader = operator_config[GoogleSheetsCredentials].client_email
    sheets.add_spreadsheet(API_KEY, {"Data Mapping": TABLE}, [reader])
    sheets.add_spreadsheet(SFTP_KEY, {"Data Mapping": TABLE}, [reader])
    saved = {(t.get_block_type_slug(), golive.block_name(t)) for t in operator_config}

    stack = Stack(stack_env, "--production")
    started: dict[str, int] = {}
    try:
        stack.wait_for("hris-runbook is up.", timeout=600)
        output = "".join(stack.output)
        assert "production: every block is real; no stand-in started" in output
        assert " 0 failed" in output and "FAIL" not in output, output  # doctor passed
        assert "monitoring: 3 automations post to #monitoring-hris-files" in output
        started = started_pids(output)
        no_stand_in = {"prefect-server", "setup-links", "warm-start", "worker"}
        assert set(started) == no_stand_in, output

        api_customer = make_customer(platform="Okta", hub_url="https://api-co.10kc.example/hub/main")
        sftp_customer = make_customer(platform="Personio", hub_url="https://sftp-co.10kc.example/hub/main")
        with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{stack_env['HRIS_PREFECT_PORT']}/api"}):
            api_run, sftp_run = start(API_INTEGRATION, api_customer), start(SFTP_INTEGRATION, sftp_customer)
            with ThreadPoolExecutor(2) as pool:  # the two customers side by side, as CSMs work
                customers = [
                    pool.submit(
                        copy_context().run, drive_api_customer, api_run, api_customer, links_url,
                        smtp_server, slack, workos, hub,
                    ),
                    pool.submit(
                        copy_context().run, drive_sftp_customer, sftp_run, sftp_customer, smtp_server,
                        slack, sftp_server, hub,
                    ),
                ]  # fmt: skip
                for customer in customers:
                    customer.result()
            assert_nothing_from_the_sandbox(saved, Path(stack_env["HRIS_SANDBOX_DIR"]))
            assert_monitoring_automations()
    finally:
        status = stack.stop()
    assert status == 0, "".join(stack.output)
    wait_until(
        lambda: _all_gone(list(started.values())), timeout=60, what="every process `up` started to end"
    )


def start(flow: str, customer):
    from prefect.deployments import run_deployment

    from tasks.contracts import deployment_name

    run = run_deployment(
        deployment_name(flow), parameters={"customer": customer.model_dump(mode="json")}, timeout=0
    )
    return run.id


def answer(run, gate: str, **values) -> None:
    """The CSM answers `gate` once the run waits there (each resume starts the run again on the worker)."""
    from tests import gates

    gates.wait_for_gate(run, gate, timeout=300)
    gates.answer(run, gate, **values)


def final_state(run):
    from tests.gates import read_run

    return wait_until(lambda: (s := read_run(run).state).is_final() and s, timeout=300, what="the run to end")


def drive_api_customer(run, customer, links_url, smtp_server, slack, workos, hub) -> None:
    """API steps 1–6 through every gate; what each stand-in received is checked on the way."""
    answer(run, "workos-organization", decision="approve", **CSM)
    answer(run, "api-implementation-email", decision="approve", **CSM)
    answer(run, "mapping-table-1", sheet_link=link(API_KEY), answered_by="Casey")
    [org] = workos.organizations.values()
    assert [d["domain"] for d in org["domains"]] == customer.email_domains
    [implementation] = to(smtp_server, customer)
    setup_link = re.search(rf"({re.escape(links_url)}/setup/[\w.-]+)", body(implementation)).group(1)
    redirect = httpx.get(setup_link, follow_redirects=False, trust_env=False, timeout=60)  # `up`'s web app
    assert redirect.status_code == 302 and redirect.headers["location"].startswith(f"{workos.url}/portal/")
    answer(run, "segments-plan", decision="approve", **CSM)
    answer(run, "integration-on", confirmed_by="Eng On-call", notes="on in production")
    [request] = [m for m in slack.messages("product-support") if "please turn it on" in m["text"]]
    assert f"<{customer.tenant_url}>" in request["text"] and customer.company_name in request["text"]
    assert [s["name"] for s in hub.hub(customer.hub_url).segments] == ["Department"]
    answer(run, "summary-cadence", cadence="quarterly", answered_by="Casey")
    answer(run, "api-final-summary", decision="approve", **CSM)
    state = final_state(run)
    assert state.is_completed(), state.message
    implementation, summary = to(smtp_server, customer)
    assert "is set up" in summary["Subject"]


def drive_sftp_customer(run, customer, smtp_server, slack, sftp_server, hub) -> None:
    """SFTP onboarding, then the first production upload found by sftp-watch and applied by process-upload."""
    from prefect.deployments import run_deployment

    from tasks.contracts import SFTP_WATCH, deployment_name
    from tasks.upload_queue import upload_runs

    members = hub.hub(customer.hub_url).members
    members["bo@acme.example"] = {
        "Email": "bo@acme.example",
        "First Name": "Bo",
        "Last Name": "Day",
        "Status": "active",
    }
    inbox = sftp_server.root / customer.key
    inbox.mkdir()
    answer(run, "sftp-implementation-email", decision="approve", **CSM)
    (inbox / "sample.csv").write_text(SAMPLE)
    ready = {"upload_frequency": "weekly", "sftp_server_confirmed": True, "mapping_link": link(SFTP_KEY)}
    answer(run, "customer-ready", sample_csv="sample.csv", answered_by="Casey", **ready)
    answer(run, "sftp-review-email", decision="approve", **CSM)
    answer(run, "customer-confirmed", confirmed_by="Casey", notes="looks right")
    answer(run, "segments-plan", decision="approve", **CSM)
    wait_until(
        lambda: (pause := read_pause_key(run)) and pause.startswith("production-upload"),
        timeout=300,
        what="the onboarding to wait for the production upload",
    )
    assert len(to(smtp_server, customer)) == 2  # implementation and review emails
    requests = [m for m in slack.messages("product-support") if "HRIS integration (SFTP)" in m["text"]]
    assert len(requests) == 2 and "please activate production processing" in requests[1]["text"]

    (inbox / "employees.csv").write_text(PRODUCTION)
    (inbox / "employees.csv.done").write_text("")  # the vendor's completion marker: no settle wait
    watch = run_deployment(deployment_name(SFTP_WATCH), timeout=300)
    assert watch.state.is_completed(), watch.state.message
    upload = wait_until(lambda: upload_runs(customer.key, live_only=False), timeout=60, what="process-upload")
    [upload_run] = upload
    answer(upload_run.id, "apply-files", decision="approve", **CSM)
    assert final_state(upload_run.id).is_completed()
    state = final_state(run)
    assert state.is_completed(), state.message
    hub_members = hub.hub(customer.hub_url).members
    assert set(hub_members) == {"ann@acme.example", "new@acme.example", "bo@acme.example"}
    assert hub_members["bo@acme.example"]["Status"] == "deactivated"
    shares = [m for m in slack.messages("monitoring-hris-files") if "potential invites:" in m["text"]]
    assert len(shares) == 1
    assert [p.name for p in (inbox / "archive").iterdir() if "employees" in p.name]


def read_pause_key(run) -> str:
    from tests.gates import read_run

    state = read_run(run).state
    return (state.is_paused() and state.state_details.pause_key) or ""


def to(smtp_server, customer) -> list:
    return [m for m in smtp_server.handler.messages() if m["To"] == customer.contact_email]


def body(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def started_pids(output: str) -> dict[str, int]:
    return {name: int(pid) for name, pid in re.findall(r"started (\S+) \(pid (\d+)", output)}


def saved_state() -> dict:
    """Every block document (type slug, name) and Variable name on the server."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        documents = client.read_block_documents()
        variables = client.read_variables()
    return {
        "blocks": {(d.block_type.slug, d.name) for d in documents if not d.is_anonymous},
        "variables": {v.name: v.value for v in variables},
    }


def assert_nothing_from_the_sandbox(saved: set, sandbox_dir: Path) -> None:
    """The stack saved no block (the operator's are all there is, none the sandbox's), no Variable points
    at a stand-in or the sandbox's state, and no sandbox key, secret or inbox was made."""
    from prefect.blocks.core import Block
    from prefect.client.orchestration import get_client

    from sandbox.blocks import SANDBOX_CREDENTIALS, _stand_in_ports, sandbox_marker

    after = saved_state()
    assert after["blocks"] == saved  # the operator's, and nothing else
    with get_client(sync_client=True) as client:
        for slug, name in after["blocks"]:
            document = client.read_block_document_by_name(name, slug)
            assert sandbox_marker(Block._from_block_document(document)) is None, (slug, name)
    sandbox_marks = [*SANDBOX_CREDENTIALS, str(sandbox_dir), *(f"127.0.0.1:{p}" for p in _stand_in_ports())]
    for name, value in after["variables"].items():
        text = json.dumps(value)
        assert not [mark for mark in sandbox_marks if mark in text], name
    assert not sandbox_dir.exists()


def assert_monitoring_automations() -> None:
    from prefect.client.orchestration import get_client

    from tasks.contracts import AUTOMATIONS, MONITORING_BLOCK

    with get_client(sync_client=True) as client:
        automations = client.read_automations()
        block = client.read_block_document_by_name(MONITORING_BLOCK, "custom-webhook")
    assert sorted(a.name for a in automations) == sorted(AUTOMATIONS)
    assert all(a.enabled for a in automations)
    assert {str(action.block_document_id) for a in automations for action in a.actions} == {str(block.id)}
