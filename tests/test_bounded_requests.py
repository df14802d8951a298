"""Bounded requests to the public app, through real HTTP against uvicorn: a huge body is refused
without being held in memory, a body that trickles in is cut off, and other requests are served
meanwhile."""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc

import httpx
import pytest

from tests.conftest import ServerThread

MB = 1024 * 1024
TIMEOUT = 5.0  # the app's body timeout in these tests


@pytest.fixture
def public_app(slack):
    """The public app as `hris-runbook setup-links` serves it, with Slack's interactivity endpoint."""
    from blocks import SlackWorkspace
    from webapp import slack_actions
    from webapp.app import create_public_app

    block = SlackWorkspace(
        bot_token="xoxb-test", base_url=f"{slack.url}/api/", signing_secret=slack.signing_secret
    )
    server = ServerThread(create_public_app(slack_actions.routes_from_block(block), timeout=TIMEOUT))
    try:
        yield server
    finally:
        server.stop()


def post_raw(port: int, path: str, headers: dict[str, str], body_chunks, stop: threading.Event) -> bytes:
    """POST with a body sent chunk by chunk (in a thread) and the response read as it comes."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    conn.sendall((head + "\r\n").encode())

    def send_body():
        try:
            for chunk in body_chunks:
                if stop.is_set():
                    return
                conn.sendall(chunk)
        except OSError:  # the server answered and closed the connection: the rest is never read
            pass

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    answer = b""
    try:
        while b"\r\n\r\n" not in answer:
            data = conn.recv(65536)
            if not data:
                break
            answer += data
    finally:
        stop.set()
        conn.close()
        sender.join(10)
    return answer


def slack_headers() -> dict[str, str]:
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }


def chunked(total: int, size: int = 64 * 1024):
    piece = b"a" * size
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def plain(total: int, size: int = 64 * 1024):
    piece = b"a" * size
    for _ in range(total // size):
        yield piece


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_50_mb_body_gets_413_and_is_never_held_in_memory(public_app, framing):
    headers = slack_headers()
    if framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
        body = chunked(50 * MB)
    else:
        headers["Content-Length"] = str(50 * MB)
        body = plain(50 * MB)
    tracemalloc.start()
    try:
        answer = post_raw(public_app.port, "/slack/actions", headers, body, threading.Event())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert peak < 10 * MB, f"the server held {peak / MB:.0f} MB"
    assert httpx.get(f"{public_app.url}/health", trust_env=False, timeout=30).text == "ok"


def test_an_unsigned_request_is_refused_on_its_headers_before_its_body_is_read(public_app):
    tracemalloc.start()
    try:
        answer = post_raw(
            public_app.port,
            "/slack/actions",
            {"Content-Length": str(50 * MB)},
            plain(50 * MB),
            threading.Event(),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.startswith((b"HTTP/1.1 401", b"HTTP/1.1 413")), answer[:200]
    assert peak < 10 * MB


@pytest.mark.slow  # waits out the app's body timeout (TIMEOUT)
def test_a_slow_loris_body_is_cut_off_and_other_requests_are_served_meanwhile(public_app):
    stop, sending = threading.Event(), threading.Event()

    def trickle():
        for _ in range(1000):  # one byte every 0.2 s: 200 s if nobody cuts it off
            if stop.wait(0.2):
                return
            yield b"a"
            sending.set()  # a byte of the body is sent: the slow request is in

    result = {}

    def slow():
        started = time.monotonic()
        result["answer"] = post_raw(
            public_app.port, "/slack/actions", slack_headers() | {"Content-Length": "1000"}, trickle(), stop
        )
        result["seconds"] = time.monotonic() - started

    client = threading.Thread(target=slow, daemon=True)
    client.start()
    assert sending.wait(60), "the slow request never started sending its body"
    assert httpx.get(f"{public_app.url}/health", trust_env=False, timeout=30).text == "ok"
    assert "answer" not in result  # served while the slow body was still trickling in
    client.join(60)
    stop.set()
    assert result["answer"].startswith(b"HTTP/1.1 408"), result["answer"][:200]
    assert result["seconds"] < 30
