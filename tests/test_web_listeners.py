"""The web app's two listeners, through real HTTP: the public one never serves internal pages; the
internal one (the status board) is on 127.0.0.1 by default and, when configured, behind basic auth."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest
from pydantic import SecretStr

from blocks import WebApp
from tests.conftest import delete_block, free_ports, wait_until

SECRET = "listeners-test-secret-0123456789abcdef"
PASSWORD = "board-password-0123456789"


def get(url: str, **kwargs) -> httpx.Response:
    return httpx.get(url, trust_env=False, timeout=60, **kwargs)


@pytest.fixture
def web_block(prefect_api):
    name = f"web-{uuid.uuid4().hex[:8]}"
    WebApp(url="https://hris.10kc.example", signing_secret=SECRET).save(name)
    yield name
    delete_block(WebApp, name)


def running(servers):
    """`hris-runbook setup-links`'s servers, started as the command starts them, in a thread."""
    from webapp.app import serve

    thread = threading.Thread(target=serve, args=(servers,), daemon=True)
    thread.start()
    wait_until(lambda: all(server.started for server in servers), timeout=60, what="both listeners")
    return thread


def stop(servers, thread):
    for server in servers:
        server.should_exit = True
    thread.join(15)


def test_the_public_listener_answers_404_for_the_board_and_the_internal_one_serves_it(web_block):
    from webapp.app import listeners

    public_port, internal_port = free_ports(2)
    servers = listeners(web_block, "127.0.0.1", public_port, internal_port=internal_port)
    assert servers[1].config.host == "127.0.0.1"  # the default: internal pages stay on this machine
    thread = running(servers)
    try:
        public, internal = f"http://127.0.0.1:{public_port}", f"http://127.0.0.1:{internal_port}"
        assert get(f"{public}/health").text == "ok"
        assert get(f"{public}/board").status_code == 404
        assert get(f"{public}/board?csm=x").status_code == 404
        board = get(f"{internal}/board")
        assert board.status_code == 200 and "Runbook status board" in board.text
        assert get(f"{internal}/member-export/x").status_code == 404  # customers' pages are public only
    finally:
        stop(servers, thread)


def test_the_internal_listener_asks_for_the_blocks_password_when_one_is_set(web_block):
    from tests.conftest import ServerThread
    from webapp.app import internal_app_from_blocks

    WebApp(
        url="https://hris.10kc.example", signing_secret=SECRET, internal_password=SecretStr(PASSWORD)
    ).save(web_block, overwrite=True)
    server = ServerThread(internal_app_from_blocks(web_block))
    try:
        refused = get(f"{server.url}/board")
        assert refused.status_code == 401 and "Runbook status board" not in refused.text
        assert refused.headers["www-authenticate"].startswith("Basic")
        assert get(f"{server.url}/board", auth=("runbook", "wrong-password-000000")).status_code == 401
        assert get(f"{server.url}/board", auth=("someone", PASSWORD)).status_code == 401
        board = get(f"{server.url}/board", auth=("runbook", PASSWORD))
        assert board.status_code == 200 and "Runbook status board" in board.text
    finally:
        server.stop()


def test_a_short_internal_password_is_refused_without_repeating_it():
    with pytest.raises(ValueError, match="at least 16 characters") as refused:
        WebApp(url="https://x.example", signing_secret=SECRET, internal_password=SecretStr("short-pw"))
    assert "short-pw" not in str(refused.value)


def test_the_command_binds_the_internal_listener_to_loopback_unless_told_otherwise(monkeypatch):
    import webapp.app
    from cli.main import main

    seen = {}

    def listeners(block, host, port, internal_host, internal_port):
        seen.update(host=host, internal_host=internal_host, internal_port=internal_port)
        raise ValueError("not started in this test")

    monkeypatch.setattr(webapp.app, "listeners", listeners)
    assert main(["setup-links", "--host", "0.0.0.0"]) == 2
    assert seen == {"host": "0.0.0.0", "internal_host": "127.0.0.1", "internal_port": 8031}
