"""The block documents `make up` saves when nobody configured real ones: all point at the stand-ins."""

from __future__ import annotations

import getpass
import json
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from blocks import (
    GoogleSheetsCredentials,
    SftpServer,
    SlackWorkspace,
    SmtpServer,
    TenKCHub,
    WebApp,
    WorkOSCredentials,
)
from sandbox import ports
from sandbox.slack import SlackStandIn
from sandbox.slack_workspace import TEAM_ID as SLACK_TEAM_ID


def _sheets_key(state_dir: Path) -> str:
    """The sandbox service-account key, made once and kept with the sandbox state."""
    from sandbox.sheets import make_service_account

    path = state_dir / "service-account.json"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(make_service_account(f"http://127.0.0.1:{ports.SHEETS_PORT}/token")))
    return path.read_text()


def _kept_secret(state_dir: Path, name: str) -> str:
    path = state_dir / name
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text()


def _sftp_keys(state_dir: Path) -> tuple[str, str]:
    """(client private key, host public key) of the sandbox SFTP server, made once and kept."""
    from sandbox.sftp import _stored_keypair

    keys = state_dir / "sftp-keys"
    keys.mkdir(parents=True, exist_ok=True)
    return _stored_keypair(keys / "client_key")[0], _stored_keypair(keys / "host_key")[1]


def sandbox_blocks(state_dir: Path) -> dict[type, object]:
    client_key, host_key = _sftp_keys(state_dir)
    return {
        SmtpServer: SmtpServer(
            host="127.0.0.1",
            port=ports.SMTP_PORT,
            security="none",
            from_address="10KC Customer Success <cs@10kc.example>",
            default_cc=["hris-team@10kc.example"],
        ),
        SlackWorkspace: SlackWorkspace(
            bot_token=ports.SLACK_TOKEN,
            base_url=f"http://127.0.0.1:{ports.SLACK_PORT}/api/",
            signing_secret=SlackStandIn.signing_secret,
            team_id=SLACK_TEAM_ID,  # the stand-in's clicks come from it
        ),
        GoogleSheetsCredentials: GoogleSheetsCredentials(
            service_account_info=_sheets_key(state_dir), api_base_url=f"http://127.0.0.1:{ports.SHEETS_PORT}"
        ),
        TenKCHub: TenKCHub(api_token=ports.HUB_TOKEN, base_url_override=f"http://127.0.0.1:{ports.HUB_PORT}"),
        WorkOSCredentials: WorkOSCredentials(
            api_key=ports.WORKOS_KEY,
            base_url=f"http://127.0.0.1:{ports.WORKOS_PORT}",
            dashboard_url=f"http://127.0.0.1:{ports.WORKOS_PORT}/dashboard",
            setup_links_url=f"http://127.0.0.1:{ports.SETUP_LINKS_PORT}",
            setup_links_secret=_kept_secret(state_dir, "setup-links-secret"),
        ),
        WebApp: WebApp(  # the same key as the WorkOS block's, so both kinds of link open
            url=f"http://127.0.0.1:{ports.SETUP_LINKS_PORT}",
            signing_secret=_kept_secret(state_dir, "setup-links-secret"),
        ),
        SftpServer: SftpServer(
            host="127.0.0.1",
            port=ports.SFTP_PORT,
            username=getpass.getuser(),
            private_key=client_key,
            host_key=host_key,
            inbox_root=str((state_dir / "sftp").resolve()),
        ),
    }


def webhook_notification_block(webhook_url: str):
    """A Prefect "Custom Webhook" notification block posting `{"text": …}` to a Slack incoming webhook
    (the URL kept as a secret): what the sandbox saves as `hris-monitoring`, pointed at the stand-in."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    return CustomWebhookNotificationBlock(
        name="hris-runbook monitoring",
        url="{{webhook_url}}",
        json_data={"text": "*{{subject}}*\n{{body}}"},
        secrets={"webhook_url": webhook_url},
    )


def sandbox_monitoring_block():
    """The sandbox's `hris-monitoring` block: the Slack stand-in's #monitoring-hris-files webhook."""
    return webhook_notification_block(f"http://127.0.0.1:{ports.SLACK_PORT}{ports.MONITORING_WEBHOOK_PATH}")


SANDBOX_CREDENTIALS = {ports.SLACK_TOKEN, ports.HUB_TOKEN, ports.WORKOS_KEY}
SANDBOX_SERVICE_ACCOUNT = "hris-runbook@sandbox.iam.gserviceaccount.com"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _stand_in_ports() -> set[int]:
    """The stand-ins' ports (not the web app's: production runs our own web app too)."""
    return {
        ports.SMTP_PORT,
        ports.SLACK_PORT,
        ports.SHEETS_PORT,
        ports.HUB_PORT,
        ports.WORKOS_PORT,
        ports.SFTP_PORT,
    }


def _sandbox_credentials() -> set[str]:
    """The stand-ins' tokens, and the link secret the sandbox made (if this install has one)."""
    kept = Path(os.environ.get("HRIS_SANDBOX_DIR", ".sandbox")) / "setup-links-secret"
    return SANDBOX_CREDENTIALS | ({kept.read_text()} if kept.is_file() else set())


def sandbox_marker(block) -> str | None:
    """Why a saved block is the sandbox's, or None for a real one (even one on a loopback address).

    A sandbox block carries a stand-in's credential (sandbox/ports.py: the Slack token, hub token,
    WorkOS key; the sandbox service account; the link secret in the sandbox dir), or points at a
    stand-in's loopback port.
    """
    credentials = _sandbox_credentials()
    values = {}
    for name in type(block).model_fields:
        value = getattr(block, name)
        values[name] = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        if isinstance(values[name], dict):  # a Custom Webhook's secrets: each value is checked too
            values |= {f"{name}.{k}": v for k, v in values[name].items() if isinstance(v, str)}
    for name, value in list(values.items()):
        if isinstance(value, str) and value in credentials:
            return f"{name} is the sandbox's"
        if isinstance(value, str) and SANDBOX_SERVICE_ACCOUNT in value:
            return f"{name} is the sandbox service account"
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            parts = urlsplit(value)
            if parts.hostname in _LOOPBACK and parts.port in _stand_in_ports():
                return f"{name} {value} is a sandbox stand-in"
    host, port = values.get("host"), values.get("port")
    if host in _LOOPBACK and port in _stand_in_ports():
        return f"{host}:{port} is a sandbox stand-in"
    return None


def points_at_sandbox(block) -> bool:
    """Whether a saved block is one of ours (so the stand-ins must run)."""
    return sandbox_marker(block) is not None
