"""A CSM's day in the real Prefect UI, in a real browser (Debian's chromium driven by Playwright).

The session's test server serves the API only (prefect_test_harness turns the UI off), so this
module serves the UI's own static app (`tests/ui_server.py`) pointing at that API. The test starts
setup-guides from Deployments > Run > Custom run, answers the email gate and the choice gate in the
Resume dialog, then the first gate of the api-integration run that setup-guides started.

Screenshots go to the test's temp dir; with HRIS_UPDATE_SCREENSHOTS=1 they replace the ones in docs/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import CHROMIUM, free_port, make_customer, require, wait_until
from tests.gates import read_run, wait_for_gate

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module", autouse=True)
def chromium_installed():
    """Before the UI is started: skip without chromium, fail under CI=true."""
    require(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def prefect_ui(prefect_api, tmp_path_factory):
    """The Prefect UI on a free loopback port, talking to the session's test server."""
    port = free_port()
    log = (tmp_path_factory.mktemp("ui") / "ui.log").open("w")
    env = dict(os.environ, PREFECT_UI_API_URL=prefect_api, PREFECT_UI_ENABLED="true")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.ui_server:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def serving():
        try:
            return httpx.get(f"{url}/ui-settings", trust_env=False).status_code == 200
        except httpx.HTTPError:
            assert process.poll() is None, "the UI server exited; see its log"
            return False

    try:
        wait_until(serving, timeout=90, what="the Prefect UI")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def page(prefect_ui, browser, tmp_path):
    """A chromium page on the UI; what it last showed is kept as last-page.png for a failing test."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, base_url=prefect_ui)
    page.set_default_timeout(60_000)  # Playwright waits for each element up to this long
    try:
        yield page
    finally:
        page.screenshot(path=tmp_path / "last-page.png")


def screenshot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=path)
    if os.environ.get("HRIS_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(path, DOCS / name)


def form_field(scope, label: str):
    """The schema-form property titled `label` (the UI does not tie its labels to the inputs)."""
    return scope.locator(
        "xpath=.//div[contains(concat(' ', @class, ' '), ' schema-form-property ')]"
        "[./div[contains(@class, 'p-label__header')]"
        "//span[contains(@class, 'schema-form-property__label')]"
        f"[normalize-space()='{label}' or normalize-space()='{label} (Optional)']]"
    ).first


def fill(scope, label: str, value: str) -> None:
    form_field(scope, label).locator("textarea, input").first.fill(value)


def choose(scope, label: str, option: str) -> None:
    from playwright.sync_api import expect

    control = form_field(scope, label).locator(".p-select-button__control")
    control.press("ArrowDown")  # opens the list, as the keyboard does (a click only focuses it here)
    listbox = scope.page.get_by_role("listbox")
    listbox.locator(".p-select-option").filter(has=scope.page.get_by_text(option, exact=True)).first.click()
    expect(control).to_contain_text(option)


def wait_at_gate(flow_run_id, gate: str) -> None:
    """Wait until the run waits at `gate`, from a thread: Prefect's sync helpers would see Playwright's loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(wait_for_gate, flow_run_id, gate, 120).result()


def resume_dialog(page, flow_run_id, gate: str):
    """Open the run's page once it waits at `gate` and open its Resume dialog."""
    from playwright.sync_api import expect

    wait_at_gate(flow_run_id, gate)
    page.goto(f"/runs/flow-run/{flow_run_id}")
    page.get_by_role("button", name="Resume", exact=True).click()
    dialog = page.locator(".p-modal")
    expect(dialog.get_by_text("Resume Flow Run")).to_be_visible()
    return dialog


def left_gate(flow_run_id, gate: str, timeout: float) -> bool:
    """Whether the run took an answer at `gate` (it no longer waits there) within `timeout`."""

    def moved() -> bool:
        state = read_run(flow_run_id).state
        return not (state and state.is_paused() and state.state_details.pause_key == gate)

    def poll() -> bool:
        try:
            return bool(wait_until(moved, timeout=timeout, what=f"the run to leave {gate}"))
        except AssertionError:
            return False

    with ThreadPoolExecutor(1) as pool:  # Prefect's sync helpers would see Playwright's loop
        return pool.submit(poll).result()


def answer_in_ui(page, flow_run_id, gate: str, fill_in) -> None:
    """Resume, fill in, Submit, as a CSM does. A Submit the busy server refused (SQLite "database is
    locked" answers 503, and the dialog says so) is made again, as the README tells CSMs to."""
    for _ in range(3):
        dialog = resume_dialog(page, flow_run_id, gate)
        fill_in(dialog)
        dialog.get_by_role("button", name="Submit", exact=True).click()
        if left_gate(flow_run_id, gate, timeout=120):
            return
    raise AssertionError(f"three answers at {gate} were not taken by the server")


def submit_custom_run(page, deployment: str, customer) -> list:
    """Submit the Custom run form and return the run it created; a Submit the busy server refused
    ("Unknown error while creating flow run") is clicked again, as a person would."""
    for _ in range(3):
        page.get_by_role("button", name="Submit", exact=True).click()
        try:
            return wait_until(
                lambda: runs_of(deployment, customer), timeout=120, what=f"the {deployment} run"
            )
        except AssertionError:
            if not page.get_by_role("button", name="Submit", exact=True).is_visible():
                raise
    raise AssertionError(f"three Submits of the {deployment} form created no run")


def runs_of(deployment: str, customer) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    with get_client(sync_client=True) as client:
        deployment_id = client.read_deployment_by_name(f"{deployment}/{deployment}").id
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]))
        )
    return [r for r in runs if r.parameters["customer"]["email_domains"] == customer.email_domains]


@pytest.mark.timeout(600)  # the session's server and served flows may start inside this test
def test_a_csm_runs_setup_guides_and_answers_its_gates_in_the_prefect_ui(
    tmp_path, served, smtp_block, smtp_server, slack_block, slack, workos_block, workos, page
):  # `page` last: Playwright's event loop must not be running while the blocks are saved
    from playwright.sync_api import expect

    customer = make_customer(company_name="Globex Holdings", platform="Okta", contact_first_name="Hank")
    customer = customer.model_copy(update={"contact_email": f"hank.scorpio@{customer.email_domains[0]}"})

    # Deployments > setup-guides > Run > Custom run, the customer form filled in as a person does
    page.goto("/deployments")
    page.locator("a[href*='/deployments/deployment/']", has_text="setup-guides").first.click()
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Custom run").click()
    fill(page, "Company name", customer.company_name)
    fill(page, "Contact first name", customer.contact_first_name)
    fill(page, "Contact email", customer.contact_email)
    fill(page, "HRIS platform", customer.platform)
    domains = form_field(page, "Email domains")
    domains.get_by_role("button", name="Add item").click()
    domains.locator("textarea, input").first.fill(customer.email_domains[0])
    fill(page, "Tenant URL", customer.tenant_url)
    fill(page, "Hub URL", customer.hub_url)
    for role, person in (("CSM", customer.csm), ("Implementation manager", customer.implementation_manager)):
        fill(form_field(page, role), "Name", person.name)
        fill(form_field(page, role), "Email", person.email)
    fill(page, "Slack account channel", customer.slack_channel)
    form_field(page, "Company name").scroll_into_view_if_needed()
    screenshot(page, tmp_path, "ui-custom-run-form.png")
    [run] = submit_custom_run(page, "setup-guides", customer)
    expect(page).to_have_url(re.compile(r"/runs/flow-run/|/deployments/deployment/[^/]+$"))
    assert wait_until(
        lambda: read_run(run.id).name == "Globex Holdings · setup-guides", what="the run's name"
    )

    # the email gate: the email to approve is in the dialog; the CSM corrects the subject and approves
    def approve_corrected_email(dialog) -> None:
        expect(
            dialog.get_by_text("Send “Connecting Okta to 10KC: your two options” to Globex Holdings")
        ).to_be_visible()
        expect(dialog.get_by_text("point at a placeholder host")).to_be_visible()
        choose(dialog, "Decision", "approve")
        fill(dialog, "Your name", "Casey Success")
        fill(dialog, "Subject", "Globex and Okta: your two options")
        screenshot(page, tmp_path, "ui-resume-email-gate.png")

    answer_in_ui(page, run.id, "setup-guides-email", approve_corrected_email)

    [message] = wait_until(smtp_server.handler.messages, timeout=120, what="the setup guides email")
    assert message["Subject"] == "Globex and Okta: your two options"
    assert message["To"] == customer.contact_email

    # the choice gate: the customer chose the API
    def api_chosen(dialog) -> None:
        choose(dialog, "Option chosen", "api")
        fill(dialog, "Your name", "Casey Success")

    answer_in_ui(page, run.id, "customer-choice", api_chosen)

    [api_run] = wait_until(lambda: runs_of("api-integration", customer), timeout=120, what="api-integration")
    try:
        # api-integration's first gate, answered the same way: the WorkOS organization is created
        def organization_approved(dialog) -> None:
            expect(
                dialog.get_by_text("Create (or find) Globex Holdings's WorkOS organization")
            ).to_be_visible()
            choose(dialog, "Decision", "approve")
            fill(dialog, "Your name", "Casey Success")

        answer_in_ui(page, api_run.id, "workos-organization", organization_approved)
        wait_at_gate(api_run.id, "api-implementation-email")
        [organization] = workos.organizations.values()
        assert organization["name"] == "Globex Holdings"
        assert read_run(api_run.id).name == "Globex Holdings · api-integration"
        final = wait_until(
            lambda: (s := read_run(run.id).state).is_final() and s, timeout=180, what="run end"
        )
        assert final.is_completed(), final.message
    finally:
        from prefect.client.orchestration import get_client
        from prefect.states import Cancelled

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(api_run.id, Cancelled(message="browser test over"), force=True)


@pytest.mark.timeout(600)
def test_the_update_mapping_gate_shows_the_what_if_in_the_prefect_ui(
    tmp_path,
    served,
    sheets,
    sheets_block,
    hub,
    hub_block,
    sftp_block,
    sftp_server,
    slack_block,
    slack,
    clean_registrations,
    page,
):
    """Issue 23 §3: the CSM reads the what-if of a new mapping table in the segments-plan Resume dialog."""
    from playwright.sync_api import expect

    from tests.test_update_mapping import NEW_LINK, applied_with_old_table, start

    customer = make_customer(company_name="Initech")

    def prepared():  # Prefect's sync helpers, off Playwright's loop
        applied_with_old_table(customer, sheets, sheets_block, hub, hub_block, sftp_server)
        return start(customer, NEW_LINK)

    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(prepared).result()

    def approve_with_the_what_if(dialog) -> None:
        what_if = dialog.get_by_text("What-if on the last applied upload")
        expect(what_if).to_be_visible()
        expect(dialog.get_by_text("members changed", exact=True)).to_be_visible()
        expect(dialog.get_by_role("cell", name="1: Marketing")).to_have_count(2)  # the plan, the what-if
        what_if.scroll_into_view_if_needed()
        choose(dialog, "Decision", "approve")
        fill(dialog, "Your name", "Casey Success")
        what_if.scroll_into_view_if_needed()
        screenshot(page, tmp_path, "ui-update-mapping-whatif.png")

    answer_in_ui(page, run, "segments-plan", approve_with_the_what_if)


@pytest.mark.timeout(600)
def test_the_apply_gate_shows_the_customer_s_receipt_and_approving_sends_it(
    tmp_path, prefect_api, sftp_block, sftp_server, slack_block, slack, hub_block, hub, smtp_block, smtp_server,
    clean_registrations, page,
):  # fmt: skip
    """Issue 23 §2: the CSM reads the receipt in the apply-files Resume dialog; Submit sends it, once."""
    from playwright.sync_api import expect

    from tests.test_upload_receipt import claim, receipt_customer, start

    def prepared():  # Prefect's sync helpers, off Playwright's loop
        reg = receipt_customer(tmp_path)
        return start(reg, claim(sftp_server, reg))

    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(prepared).result()

    def approve_with_the_receipt(dialog) -> None:
        receipt = dialog.get_by_text("Receipt to the customer")
        expect(receipt).to_be_visible()
        expect(form_field(dialog, "Send the receipt")).to_be_visible()
        choose(dialog, "Decision", "approve")
        fill(dialog, "Your name", "Casey Success")
        receipt.scroll_into_view_if_needed()
        screenshot(page, tmp_path, "ui-apply-files-receipt.png")

    answer_in_ui(page, run.flow_run_id, "apply-files", approve_with_the_receipt)
    [message] = wait_until(smtp_server.handler.messages, timeout=180, what="the receipt")
    assert message["Subject"] == "Your file staff.csv: what we changed on 10KC"
    assert message.get_body(preferencelist=("plain",)).get_content().startswith("Hello Dana,")
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(run.result).result().is_completed()


@pytest.mark.timeout(600)
def test_the_mapping_review_request_is_read_and_approved_in_the_prefect_ui(
    tmp_path, prefect_api, smtp_block, smtp_server, slack_block, slack, clean_registrations, page
):
    """Issue 23 §1: the periodic request for updated mapping values, reviewed at its gate like any email."""
    import uuid
    from datetime import UTC, datetime

    from playwright.sync_api import expect

    from tasks.review_periods import last_ended
    from tests.test_mapping_review import LONG_AGO, _register

    customer = make_customer(company_name="Umbrella Corp", contact_first_name="Alice")
    period = last_ended("monthly", datetime.now(UTC))

    def prepared():  # Prefect's sync helpers, off Playwright's loop
        from flows.mapping_review import mapping_review
        from tests.gates import FlowInThread

        _register(customer, "monthly", LONG_AGO)
        name = f"review-{uuid.uuid4().hex[:8]}"
        return FlowInThread(mapping_review, name, customer_key=customer.key, period=period.label)

    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(prepared).result()

    def approve_the_request(dialog) -> None:
        expect(dialog.get_by_text("on a monthly basis", exact=False).first).to_be_visible()
        choose(dialog, "Decision", "approve")
        fill(dialog, "Your name", "Casey Success")
        screenshot(page, tmp_path, "ui-mapping-review-email.png")

    answer_in_ui(page, run.flow_run_id, "mapping-review-email", approve_the_request)
    [message] = wait_until(smtp_server.handler.messages, timeout=180, what="the review request")
    assert message["To"] == customer.contact_email and period.label in message["Subject"]
