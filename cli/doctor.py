"""`hris-runbook doctor`: the go-live check, one cheap real call to each configured system.

Nothing is sent, created or changed: Slack auth.test and a channel listing, one WorkOS organization
listed, a Google token fetched, SMTP up to AUTH (no mail), an SFTP stat, a hub segment listing, GETs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

HTTP_TIMEOUT = 15


@dataclass
class Check:
    """One row of the table: what was checked, whether it passed, and in words what was seen."""

    what: str
    ok: bool
    detail: str


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _run(what: str, call: Callable[[], str]) -> Check:
    """Run one check; any error is its one-line FAIL, never a traceback."""
    try:
        return Check(what, True, call())
    except Exception as exc:  # noqa: BLE001 — every failure of a live call is a row, not a crash
        return Check(what, False, _one_line(exc))


def _get_ok(url: str) -> str:
    response = httpx.get(url, timeout=HTTP_TIMEOUT, follow_redirects=True)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}")
    return f"{url} answers 200"


def _slack(block, channels: list[str]) -> str:
    from tasks.slack import Slack

    slack = Slack(block.model_copy(update={"max_retries": 0}))
    identity = slack._call("auth.test", slack.client.auth_test)  # a one-line error with Slack's code
    team = identity.get("team_id")
    if block.team_id and team != block.team_id:
        raise RuntimeError(
            f"the bot token is for Slack workspace {team}, but the block's team_id is {block.team_id}: "
            "every click would be refused; set team_id to the bot's workspace"
        )
    for channel in channels:
        slack.channel_id(channel)  # raises naming the channel the bot is not in
    return f"auth.test ok (bot {identity.get('user', '?')}); in {', '.join(channels)}"


def _workos(block) -> str:
    block.get_client().organizations.list_organizations(limit=1)
    return f"organizations listed ({block.base_url or 'https://api.workos.com'})"


def _google(block) -> str:
    import json

    from google.auth.transport.requests import Request
    from google.oauth2.service_account import Credentials

    from blocks.google_sheets import SCOPES

    info = json.loads(block.service_account_info.get_secret_value())
    Credentials.from_service_account_info(info, scopes=SCOPES).refresh(Request())
    return f"token issued to {info['client_email']}"


def _smtp(block) -> str:
    with block.get_client() as client:  # connects, STARTTLS/SSL, AUTH when a login is set
        client.ehlo_or_helo_if_needed()
        client.noop()
    login = f"AUTH as {block.username}" if block.username else "no login configured"
    return f"{block.host}:{block.port} EHLO ok, {login}; nothing sent"


def _sftp(block) -> str:
    with block.get_client() as sftp:  # refuses a host key other than the pinned one
        sftp.stat(block.inbox_root)
    return f"{block.host}:{block.port} host key as pinned; inbox root {block.inbox_root} exists"


def _hub(block, hub_urls: list[str]) -> str:
    if not hub_urls:
        return "no customer hub registered yet: checked with --hub-url"
    for url in hub_urls:
        block.get_client(url).list_segments()
    return f"segments listed with the token on {len(hub_urls)} hub(s)"


def help_center_checks() -> list[Check]:
    """Every guide link the emails can carry answers 200 and none is a placeholder (host or path)."""
    from tasks.platforms import catalogue_links, is_placeholder
    from tasks.steps import help_center_catalogue

    try:
        links = catalogue_links(help_center_catalogue())
    except ValueError as exc:
        return [Check("Help Center", False, _one_line(exc))]
    problems = []
    for kind, url in links.items():
        if is_placeholder(url):
            problems.append(
                Check(f"Help Center: {kind}", False, f"{url} is a placeholder (Variables > help_center)")
            )
            continue
        check = _run(f"Help Center: {kind}", lambda url=url: _get_ok(url))
        if not check.ok:
            problems.append(check)
    return problems or [Check("Help Center", True, f"{len(links)} links answer 200, none a placeholder")]


def _registered() -> list:
    from tasks.registry import registrations

    try:
        return registrations()
    except Exception:  # noqa: BLE001 — a broken registration is sftp-watch's to report, not ours
        return []


def doctor(
    name: str = "default",
    hub_urls: list[str] | None = None,
    ui_url: str | None = None,
    ui_api_url: str | None = None,
) -> list[Check]:
    """Every check, in table order; the stack is fit to go live when every row is ok."""
    from prefect.settings import PREFECT_UI_API_URL, PREFECT_UI_URL

    from blocks import (
        GoogleSheetsCredentials,
        SftpServer,
        SlackWorkspace,
        SmtpServer,
        TenKCHub,
        WebApp,
        WorkOSCredentials,
    )
    from blocks.web_app import load_checked, load_web_app
    from cli.bootstrap import block_types
    from sandbox.blocks import sandbox_marker

    required, optional = block_types()
    registered = _registered()
    results: list[Check] = []
    blocks = {}
    for block_type in [*required, *optional]:
        label = block_type.get_block_type_name()
        try:
            block = load_checked(block_type, name, required=False)
        except RuntimeError as exc:
            results.append(Check(label, False, _one_line(exc)))
            continue
        if block is None:
            if block_type is WebApp:
                continue  # the web app's row below says whether the WorkOS block's links stand in
            if block_type in optional:
                note = "CSMs get the checklist" if block_type is TenKCHub else "the SFTP path cannot run"
                results.append(Check(label, True, f"not configured: {note}"))
            else:
                results.append(
                    Check(label, False, f"no block named {name!r}: create it (Prefect UI > Blocks)")
                )
            continue
        why = sandbox_marker(block)
        if why:
            results.append(Check(label, False, f"sandbox block ({why}): replace it with the real one"))
            continue
        blocks[block_type] = block

    channels = [r.customer.slack_channel for r in registered if r.customer.slack_channel]
    hubs = hub_urls if hub_urls is not None else sorted({r.customer.hub_url for r in registered})
    checks: dict[type, Callable] = {
        SlackWorkspace: lambda b: _slack(
            b, list(dict.fromkeys([b.product_support_channel, b.monitoring_channel, *channels]))
        ),
        GoogleSheetsCredentials: _google,
        WorkOSCredentials: _workos,
        TenKCHub: lambda b: _hub(b, hubs),
        SftpServer: _sftp,
        SmtpServer: _smtp,
    }
    for block_type, block in blocks.items():
        if block_type in checks:
            results.append(_run(block_type.get_block_type_name(), lambda c=checks[block_type], b=block: c(b)))

    results += help_center_checks()
    ui = (ui_url or PREFECT_UI_URL.value() or "").rstrip("/")
    if ui:
        results.append(_run("Prefect UI public URL", lambda: _get_ok(ui)))
        api = (ui_api_url or PREFECT_UI_API_URL.value() or f"{ui}/api").rstrip("/")
        results.append(_run("Prefect API public URL", lambda: _get_ok(f"{api}/health")))
    else:
        results.append(Check("Prefect UI public URL", False, "PREFECT_UI_URL is not set (HRIS_PUBLIC_URL)"))

    try:
        web = load_web_app(name)
    except Exception as exc:  # noqa: BLE001 — missing or invalid: named in one line
        results.append(Check("Web app public URL", False, _one_line(exc)))
    else:
        results.append(_run("Web app public URL", lambda: _get_ok(f"{web.url}/health")))
    results.append(_signing_secrets(blocks))
    results.append(_run("Monitoring notifications", _monitoring))
    return results


def _monitoring() -> str:
    """The notification block the server's automations post through is saved, real, and a webhook URL;
    nothing is posted (a test message would reach #monitoring-hris-files)."""
    from cli.monitoring import monitoring_block, monitoring_block_label
    from sandbox.blocks import sandbox_marker

    block = monitoring_block()
    if block is None:
        raise RuntimeError(
            f"no {monitoring_block_label()}: create it (Prefect UI > Blocks) with the incoming webhook "
            "of #monitoring-hris-files"
        )
    label = f"{type(block).get_block_type_name()} block {block._block_document_name!r}"
    why = sandbox_marker(block)
    if why:
        raise RuntimeError(f"{label} is a sandbox block ({why}): replace it with the real one")
    url = block.url.get_secret_value() if hasattr(block.url, "get_secret_value") else block.url
    if "{{" in url:  # a Custom Webhook keeps the URL among its secrets
        url = next((v for v in block.secrets.get_secret_value().values() if isinstance(v, str)), "")
    if not url.startswith(("https://", "http://")):
        raise RuntimeError(f"{label}: its webhook URL is not an http(s) address")
    return f"{label} set: the server's automations post to it (nothing sent now)"


def _signing_secrets(blocks: dict) -> Check:
    """The web app signs its links (checked long enough when saved); Slack's secret verifies clicks."""
    from blocks import SlackWorkspace

    slack = blocks.get(SlackWorkspace)
    if slack is not None and slack.signing_secret is None:
        return Check(
            "Signing secrets",
            False,
            "Slack Workspace signing_secret is not set (Slack app > Basic Information > Signing Secret)",
        )
    return Check("Signing secrets", True, "web app link secret set (32+ bytes); Slack signing secret set")


def table(results: list[Check]) -> str:
    """The results as one plain-text table, failures marked FAIL."""
    width = max(len(r.what) for r in results)
    lines = [f"{'check'.ljust(width)}  result  detail"]
    lines += [f"{r.what.ljust(width)}  {'ok    ' if r.ok else 'FAIL  '}  {r.detail}" for r in results]
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed} ok, {failed} failed")
    return "\n".join(lines)
