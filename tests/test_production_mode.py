"""Production mode never fakes: nothing from sandbox/ is saved or started, a missing or sandbox block
is refused by name; outside it, `make up` saves no sandbox block beside real ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.bootstrap import GoLiveRefused, bootstrap
from tests import golive
from tests.conftest import free_ports
from tests.golive import save, saved_defaults

no_default_blocks, real_blocks = golive.no_default_blocks, golive.real_blocks  # the fixtures

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sandbox_dir(tmp_path, monkeypatch):
    path = tmp_path / "sandbox"
    monkeypatch.setenv("HRIS_SANDBOX_DIR", str(path))
    return path


def test_production_refuses_the_one_missing_block_by_name_and_saves_nothing(real_blocks, sandbox_dir):
    from blocks import SmtpServer

    save({t: b for t, b in real_blocks.items() if t is not SmtpServer})
    with pytest.raises(GoLiveRefused) as refused:
        bootstrap(production=True)
    assert refused.value.code == (
        "error: no SMTP Server block named 'default': create it in the Prefect UI (Blocks); "
        "production mode never saves the sandbox's"
    )
    assert "SMTP Server" not in saved_defaults()
    assert not sandbox_dir.exists()  # no sandbox key, secret or inbox was made either


def test_production_refuses_a_saved_sandbox_block_by_name(real_blocks, sandbox_dir):
    from blocks import SlackWorkspace
    from sandbox.blocks import sandbox_blocks

    save(real_blocks | {SlackWorkspace: sandbox_blocks(sandbox_dir)[SlackWorkspace]})
    with pytest.raises(GoLiveRefused) as refused:
        bootstrap(production=True)
    assert refused.value.code == (
        "error: Slack Workspace block 'default' is a sandbox block (bot_token is the sandbox's): "
        "replace it with the real one in the Prefect UI (Blocks) before going live"
    )


def test_production_refuses_a_missing_or_sandbox_monitoring_block_by_name(real_blocks, sandbox_dir):
    """The server's automations alert through the `hris-monitoring` block: going live without it (or
    with the sandbox's, which posts to the stand-in) would leave nobody watching the watcher."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from sandbox.blocks import sandbox_monitoring_block

    save({t: b for t, b in real_blocks.items() if t is not CustomWebhookNotificationBlock})
    with pytest.raises(GoLiveRefused) as refused:
        bootstrap(production=True)
    assert refused.value.code == (
        "error: no Slack Webhook block 'hris-monitoring': create it in the Prefect UI (Blocks) with the "
        "incoming webhook of #monitoring-hris-files; production mode never saves the sandbox's"
    )
    sandbox_monitoring_block().save("hris-monitoring", overwrite=True)
    with pytest.raises(GoLiveRefused) as refused:
        bootstrap(production=True)
    assert refused.value.code.startswith(
        "error: Custom Webhook block 'hris-monitoring' is a sandbox block (secrets.webhook_url http://127.0.0.1:"
    )
    real_blocks[CustomWebhookNotificationBlock].save("hris-monitoring", overwrite=True)
    assert bootstrap(production=True).line.startswith("production: every block is real")


def test_production_without_a_hub_block_is_the_checklist_path(real_blocks, sandbox_dir):
    from blocks import TenKCHub

    save({t: b for t, b in real_blocks.items() if t is not TenKCHub})
    plan = bootstrap(production=True)
    assert not plan.uses_sandbox  # no stand-in is started
    assert plan.line == (
        "production: every block is real; no stand-in started; "
        "no 10KC Hub block: segments and uploads use the CSM checklist"
    )
    assert "10KC Hub" not in saved_defaults()


def test_up_beside_real_blocks_saves_no_sandbox_hub_or_web_app_and_says_so(real_blocks, sandbox_dir):
    """Before: `make up` saved the sandbox hub beside a real Slack, and uploads went to the stand-in hub."""
    from blocks import SlackWorkspace

    save({SlackWorkspace: real_blocks[SlackWorkspace]})
    plan = bootstrap()
    assert saved_defaults() == {"Slack Workspace"}
    kept = SlackWorkspace.load("default")  # issue 19: the real block is kept as it was, not overwritten
    assert kept.base_url == real_blocks[SlackWorkspace].base_url and kept.signing_secret is not None
    assert not plan.uses_sandbox
    assert plan.line.startswith("configured blocks: Slack Workspace; missing (runs that need them stop")
    assert (
        "no sandbox block saved; no 10KC Hub block: segments and uploads use the CSM checklist" in plan.line
    )


def test_up_beside_an_invalid_default_block_names_it_and_saves_nothing_over_it(real_blocks, sandbox_dir):
    """Issue 19: a `default` block saved before a check (here an SMTP security nobody knows) is named in
    one line; `make up` neither replaces it with the sandbox's nor saves any sandbox block beside it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import BlockDocumentUpdate

    from blocks import SmtpServer

    save({SmtpServer: real_blocks[SmtpServer]})
    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name("default", SmtpServer.get_block_type_slug())
        client.update_block_document(document.id, BlockDocumentUpdate(data={"security": "tls1.3"}))
    with pytest.raises(GoLiveRefused) as refused:
        bootstrap()
    assert refused.value.code.startswith("error: SMTP Server block 'default' is not valid (security: ")
    assert refused.value.code.endswith("; fix it in the Prefect UI (Blocks)")
    with get_client(sync_client=True) as client:
        kept = client.read_block_document_by_name("default", SmtpServer.get_block_type_slug())
    assert kept.id == document.id and kept.data["security"] == "tls1.3"
    assert kept.data["port"] == real_blocks[SmtpServer].port  # not the sandbox's
    with get_client(sync_client=True) as client:
        others = [
            t.get_block_type_name()
            for t in golive.every_block_type()
            if t is not SmtpServer and _has_default(client, t)
        ]
    assert others == []  # no sandbox block was saved beside it either
    assert not sandbox_dir.exists()


def _has_default(client, block_type) -> bool:
    from prefect.exceptions import ObjectNotFound

    try:
        client.read_block_document_by_name("default", block_type.get_block_type_slug())
    except ObjectNotFound:
        return False
    return True


def test_up_with_nothing_saved_is_the_whole_sandbox(no_default_blocks, sandbox_dir):
    plan = bootstrap()
    assert plan.uses_sandbox and plan.line.startswith("sandbox: every block is the sandbox's")
    assert saved_defaults() == {
        "SMTP Server",
        "Slack Workspace",
        "Google Sheets Credentials",
        "WorkOS Credentials",
        "HRIS Runbook Web App",
        "10KC Hub",
        "SFTP Server",
    }


def test_a_sandbox_block_is_told_from_a_real_one_at_a_loopback_address(real_blocks, sandbox_dir):
    from sandbox.blocks import sandbox_blocks, sandbox_marker

    assert all(sandbox_marker(block) for block in sandbox_blocks(sandbox_dir).values())
    assert not any(sandbox_marker(block) for block in real_blocks.values())


def test_up_production_refuses_a_missing_block_before_starting_anything(real_blocks, prefect_api, tmp_path):
    """`hris-runbook up --production` against a running server: one line naming the block, exit 2."""
    from blocks import GoogleSheetsCredentials

    save({t: b for t, b in real_blocks.items() if t is not GoogleSheetsCredentials})
    port = prefect_api.rsplit(":", 1)[1].split("/")[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"HRIS_PREFECT_PORT": port, "HRIS_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "up", "--production"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        "error: no Google Sheets Credentials block named 'default': create it in the Prefect UI (Blocks); "
        "production mode never saves the sandbox's"
    )
    assert "(pid " not in done.stdout  # no worker, no stand-in, no web app was started


def test_up_production_runs_doctor_first_and_starts_nothing_when_a_check_fails(
    real_blocks, prefect_api, tmp_path
):
    """Every block real, but the Help Center links are still the shipped placeholders."""
    from blocks import WebApp

    links_port, internal_port = free_ports(2)  # the web app `up` starts (its public URL: the Web App block)
    save(
        real_blocks
        | {WebApp: real_blocks[WebApp].model_copy(update={"url": f"http://127.0.0.1:{links_port}"})}
    )
    port = prefect_api.rsplit(":", 1)[1].split("/")[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "HRIS_PREFECT_PORT": port,
        "HRIS_STATE_DIR": str(tmp_path / "state"),
        "HRIS_SETUP_LINKS_PORT": str(links_port),
        "HRIS_WEB_INTERNAL_PORT": str(internal_port),  # the board's listener: 8031 may be another stack's
    }
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "up", "--production"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "production: every block is real; no stand-in started" in done.stdout
    rows = {line.split("  ")[0].strip(): line for line in done.stdout.splitlines()}
    assert "FAIL" in rows["Help Center: API guide"] and "is a placeholder" in rows["Help Center: API guide"]
    assert "ok" in rows["SMTP Server"] and "ok" in rows["Slack Workspace"]
    assert "ok" in rows["Web app public URL"]  # the web app is started before doctor looks at it
    assert done.stderr.strip() == (
        "doctor: not every check passed; no deployment or worker started (fix the FAIL rows)"
    )
    assert "started setup-links" in done.stdout
    assert "started worker" not in done.stdout and "started sandbox" not in done.stdout
