"""`hris-runbook doctor` against the stand-ins (as if they were the real systems): every row passes,
and each failure injected (a stand-in stopped, a wrong token, a placeholder link) fails its own row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.doctor import doctor
from tests import golive
from tests.conftest import ServerThread, free_port
from tests.golive import save

no_default_blocks, real_blocks, web_app = golive.no_default_blocks, golive.real_blocks, golive.web_app
ROOT = Path(__file__).resolve().parent.parent
HUB_URL = "https://acme.10kc.com/hub/main"


@pytest.fixture
def help_center(prefect_api):
    """A Help Center answering 200 for its articles, and the `help_center` Variable pointing every link at it."""
    from prefect.variables import Variable

    server = ServerThread(golive.help_center_app())

    def configure(**changes):
        Variable.set("help_center", golive.help_center_links(server.url) | changes, overwrite=True)

    configure()
    try:
        yield configure
    finally:
        Variable.unset("help_center")
        server.stop()


@pytest.fixture
def ui(prefect_api):
    """Prefect's own UI app at the public URL (the test server runs without its UI); its API is the server's."""
    from prefect.server.api.server import create_ui_app

    server = ServerThread(create_ui_app(ephemeral=False))
    try:
        yield server.url, prefect_api
    finally:
        server.stop()


def failed(ui) -> dict[str, str]:
    ui_url, api_url = ui
    return {
        r.what: r.detail for r in doctor(hub_urls=[HUB_URL], ui_url=ui_url, ui_api_url=api_url) if not r.ok
    }


@pytest.mark.timeout(600)
def test_doctor_passes_on_real_blocks_and_fails_each_injected_fault(
    real_blocks, web_app, help_center, ui, sheets, slack, tmp_path
):
    from blocks import SftpServer, SlackWorkspace, SmtpServer, TenKCHub, WorkOSCredentials
    from sandbox.blocks import sandbox_blocks

    results = doctor(hub_urls=[HUB_URL], ui_url=ui[0], ui_api_url=ui[1])
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert {r.what for r in results} == {  # every system, the links, both URLs and the secrets
        "Slack Workspace",
        "Google Sheets Credentials",
        "WorkOS Credentials",
        "10KC Hub",
        "SFTP Server",
        "SMTP Server",
        "Help Center",
        "Prefect UI public URL",
        "Prefect API public URL",
        "Web app public URL",
        "Signing secrets",
        "Monitoring notifications",
    }

    def injected(block_type, **changes) -> dict[str, str]:
        block_type_block = real_blocks[block_type].model_copy(update=changes)
        block_type_block.save("default", overwrite=True)
        try:
            return failed(ui)
        finally:
            real_blocks[block_type].save("default", overwrite=True)

    wrong = injected(SlackWorkspace, bot_token=golive_secret("xoxb-wrong"))
    assert list(wrong) == ["Slack Workspace"] and "invalid_auth" in wrong["Slack Workspace"]
    wrong = injected(SlackWorkspace, monitoring_channel="#secret-room")
    assert wrong == {
        "Slack Workspace": "SlackError: the Slack bot is not in #secret-room: invite it with /invite, then retry"
    }
    wrong = injected(SlackWorkspace, team_id="T0ELSEWHERE")
    assert wrong == {
        "Slack Workspace": "RuntimeError: the bot token is for Slack workspace T0SANDBOX, but the block's "
        "team_id is T0ELSEWHERE: every click would be refused; set team_id to the bot's workspace"
    }
    wrong = injected(SlackWorkspace, signing_secret=None)
    assert list(wrong) == ["Signing secrets"]
    wrong = injected(TenKCHub, api_token=golive_secret("hub-wrong"))
    assert list(wrong) == ["10KC Hub"] and "401" in wrong["10KC Hub"]
    wrong = injected(WorkOSCredentials, api_key=golive_secret("sk_test_wrong"))
    assert list(wrong) == ["WorkOS Credentials"]
    wrong = injected(SftpServer, inbox_root="/no/such/inbox")
    assert list(wrong) == ["SFTP Server"]
    sandbox_smtp = sandbox_blocks(tmp_path / "sandbox")[SmtpServer]
    sandbox_smtp.save("default", overwrite=True)
    wrong = failed(ui)
    real_blocks[SmtpServer].save("default", overwrite=True)
    assert list(wrong) == ["SMTP Server"] and wrong["SMTP Server"].startswith("sandbox block (127.0.0.1:")

    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from sandbox.blocks import sandbox_monitoring_block, webhook_notification_block
    from tests.conftest import delete_block

    sandbox_monitoring_block().save("hris-monitoring", overwrite=True)  # it posts to the stand-in
    wrong = failed(ui)
    assert (
        list(wrong) == ["Monitoring notifications"]
        and "is a sandbox block" in wrong["Monitoring notifications"]
    )
    delete_block(CustomWebhookNotificationBlock, "hris-monitoring")  # nobody would hear the watcher stop
    wrong = failed(ui)
    assert wrong == {
        "Monitoring notifications": "RuntimeError: no Slack Webhook block 'hris-monitoring': create it "
        "(Prefect UI > Blocks) with the incoming webhook of #monitoring-hris-files"
    }
    webhook_notification_block(slack.incoming_webhook("monitoring-hris-files")).save("hris-monitoring")

    help_center(mapping_template="/articles/hris-data-mapping-table-template")  # the shipped placeholder
    wrong = failed(ui)
    assert (
        list(wrong) == ["Help Center: mapping template"]
        and "is a placeholder" in wrong["Help Center: mapping template"]
    )
    help_center(api_guide="/gone/api")
    wrong = failed(ui)
    assert list(wrong) == ["Help Center: API guide"] and "answered 404" in wrong["Help Center: API guide"]
    help_center()

    web_app.stop()
    wrong = failed(ui)
    assert list(wrong) == ["Web app public URL"]
    sheets.stop()  # a stand-in stopped: no token for the service account
    wrong = injected(SmtpServer, port=free_port())  # nothing listens there
    assert sorted(wrong) == ["Google Sheets Credentials", "SMTP Server", "Web app public URL"]
    assert "Connection refused" in wrong["SMTP Server"]


def golive_secret(value: str):
    from pydantic import SecretStr

    return SecretStr(value)


def test_the_command_prints_one_table_and_exits_1_on_a_failure(real_blocks, prefect_api):
    """`hris-runbook doctor` as an operator runs it: exit 1, the FAIL rows named, no traceback."""
    from blocks import SmtpServer

    save({t: b for t, b in real_blocks.items() if t is not SmtpServer})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_API_URL": prefect_api, "PREFECT_UI_URL": prefect_api.removesuffix("/api")}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "doctor", "--hub-url", HUB_URL],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    rows = {line.split("  ")[0].strip(): line for line in done.stdout.splitlines()}
    assert "FAIL" in rows["SMTP Server"] and "no block named 'default'" in rows["SMTP Server"]
    assert "ok" in rows["Slack Workspace"]
    assert "FAIL" in rows["Help Center: API guide"]  # the shipped links are placeholders
