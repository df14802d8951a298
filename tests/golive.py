"""Real blocks pointed at the stand-ins (as if they were the real systems), for the go-live tests."""

from __future__ import annotations

import pytest

from tests.conftest import SETUP_LINKS_SECRET, ServerThread, delete_block

SLACK_SIGNING_SECRET = "slack-signing-secret-for-the-go-live-tests"


def every_block_type() -> list[type]:
    from cli.bootstrap import block_types

    required, optional = block_types()
    return [*required, *optional]


def monitoring_block_types() -> list[type]:
    """The notification block kinds the `hris-monitoring` block may be (cli/monitoring.py)."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook

    return [SlackWebhook, CustomWebhookNotificationBlock]


def block_name(block_type: type) -> str:
    from tasks.contracts import MONITORING_BLOCK

    return MONITORING_BLOCK if block_type in monitoring_block_types() else "default"


@pytest.fixture
def no_default_blocks(prefect_api):
    """No `default` block of any kind (nor a `hris-monitoring` one) during the test; what other tests
    saved is put back after."""
    kept = {}
    for block_type in every_block_type() + monitoring_block_types():
        try:
            kept[block_type] = block_type.load(block_name(block_type))
        except (ValueError, RuntimeError):
            pass
        delete_block(block_type, block_name(block_type))
    yield
    for block_type in every_block_type() + monitoring_block_types():
        delete_block(block_type, block_name(block_type))
    for block_type, block in kept.items():
        block.save(block_name(block_type), overwrite=True)


def saved_defaults() -> set[str]:
    """The block kinds that have a `default` document now."""
    from blocks import BlockNotConfigured, load_block

    names = set()
    for block_type in every_block_type():
        try:
            load_block(block_type)
        except BlockNotConfigured:
            continue
        names.add(block_type.get_block_type_name())
    return names


@pytest.fixture
def real_blocks(
    prefect_api, no_default_blocks, smtp_server, slack, sheets, workos_credentials, sftp_server, hub
):
    """Every kind of block, as an operator would configure the real systems, but at the stand-ins."""
    return blocks_at(smtp_server, slack, sheets, workos_credentials, sftp_server, hub)


def blocks_at(smtp_server, slack, sheets, workos_credentials, sftp_server, hub) -> dict:
    """Every kind of block (the real block types, as in the Prefect UI), each at its stand-in."""
    import json

    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from blocks import GoogleSheetsCredentials, SlackWorkspace, SmtpServer, TenKCHub, WebApp
    from sandbox.blocks import webhook_notification_block
    from sandbox.sheets import make_service_account

    account = make_service_account(
        f"{sheets.url}/token", email="hris-runbook@acme-prod.iam.gserviceaccount.com"
    )
    return {
        SmtpServer: SmtpServer(
            host="127.0.0.1",
            port=smtp_server.port,
            security="none",
            from_address="cs@10kc.com",
            timeout_seconds=5,
        ),
        SlackWorkspace: SlackWorkspace(
            bot_token="xoxb-test",
            base_url=f"{slack.url}/api/",
            signing_secret=SLACK_SIGNING_SECRET,
            max_retries=0,
        ),
        GoogleSheetsCredentials: GoogleSheetsCredentials(
            service_account_info=json.dumps(account), api_base_url=sheets.url, max_retries=0
        ),
        type(workos_credentials): workos_credentials,
        WebApp: WebApp(url=workos_credentials.setup_links_url, signing_secret=SETUP_LINKS_SECRET),
        type(sftp_server.block()): sftp_server.block(connect_timeout_seconds=5),
        TenKCHub: TenKCHub(api_token="hub-test", base_url_override=hub.url, timeout_seconds=5),
        CustomWebhookNotificationBlock: webhook_notification_block(
            slack.incoming_webhook("monitoring-hris-files")
        ),
    }


def save(blocks: dict) -> None:
    for block_type, block in blocks.items():
        block.save(block_name(block_type), overwrite=True)


@pytest.fixture
def web_app(real_blocks):
    """`hris-runbook setup-links`'s own app from the saved blocks, on a free port; the Web App block
    points at it."""
    from blocks import WebApp
    from webapp.app import app_from_blocks

    save(real_blocks)
    server = ServerThread(app_from_blocks("default"))
    real_blocks[WebApp] = WebApp(url=server.url, signing_secret=SETUP_LINKS_SECRET)
    real_blocks[WebApp].save("default", overwrite=True)
    try:
        yield server
    finally:
        server.stop()


def _help_center_page(request):
    """The Help Center stand-in: every article exists, nothing else does."""
    from starlette.responses import PlainTextResponse

    found = request.url.path.startswith("/articles/")
    return PlainTextResponse("article" if found else "not found", status_code=200 if found else 404)


def help_center_app():
    from starlette.applications import Starlette
    from starlette.routing import Route

    return Starlette(routes=[Route("/{path:path}", _help_center_page)])


def help_center_links(base_url: str) -> dict:
    """The `help_center` Variable with every guide link at the Help Center stand-in (none a placeholder)."""
    from tasks.platforms import load_catalogue

    return {
        "base_url": base_url,
        "api_guide": "/articles/1-api",
        "mapping_article": "/articles/2-mapping",
        "mapping_template": "/articles/3-template",
        "sftp_guide": "/articles/4-sftp",
        "guides": {
            p.name: f"/articles/{n}-guide" for n, p in enumerate(load_catalogue().platforms, start=10)
        },
    }
