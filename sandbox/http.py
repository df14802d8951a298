"""A small base for the HTTP stand-ins: routes, request parsing, a record of what arrived, threads,
and injected faults (429, 5xx, a hang, a dropped connection, an answer lost after acting)."""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]  # query string and form fields, merged
    json: Any
    body: bytes
    headers: dict[str, str]
    match: dict[str, str] = field(default_factory=dict)

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:] if value.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


Handler = Callable[[Request], Response]

FAULTS = ("rate_limit", "server_error", "hang", "drop", "lost_answer", "timeout_after_acting")


@dataclass
class Fault:
    """One injected fault, served to the next `times` requests that match."""

    kind: str  # one of FAULTS
    path_pattern: str
    method: str | None = None  # None: any method
    times: int = 1
    retry_after: int = 1  # rate_limit: the Retry-After header, in seconds
    status: int = 503  # server_error: the status answered
    hang_seconds: float = 30.0  # hang, timeout_after_acting: how long the request is held, then dropped

    def matches(self, request: Request) -> bool:
        return (self.method is None or self.method == request.method) and bool(
            re.search(self.path_pattern, request.path)
        )


class StandIn:
    """Subclasses register routes with `self.route(method, pattern, handler)` in `setup()`."""

    name = "stand-in"

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.received: list[Request] = []
        self.lock = threading.RLock()
        self._queued_failures: list[tuple[str, Response]] = []
        self._lost_answers: list[tuple[str, str]] = []
        self._faults: list[Fault] = []
        self.faults_served: list[tuple[str, str, str]] = []  # (fault, method, path), oldest first
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.setup()

    def setup(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def fail_next(self, path_pattern: str, response: Response) -> None:
        """Answer the next request whose path matches with `response` (429s, 5xx…) once."""
        with self.lock:
            self._queued_failures.append((path_pattern, response))

    def lose_next_answer(self, path_pattern: str, method: str = "POST") -> None:
        """Do the next matching request, then answer 502 as if the response was lost on the way."""
        with self.lock:
            self._lost_answers.append((method, path_pattern))

    def inject(
        self,
        path_pattern: str,
        fault: str,
        times: int = 1,
        *,
        method: str | None = None,
        retry_after: int = 1,
        status: int = 503,
        hang_seconds: float = 30.0,
    ) -> Fault:
        """Serve `fault` to the next `times` requests whose path matches (and method, if given).

        rate_limit: 429 with Retry-After; server_error: `status` (5xx); hang: hold the request for
        `hang_seconds` (past the client's timeout), then drop it unanswered and not acted on; drop:
        close the connection without acting or answering; lost_answer: act, then close the
        connection without answering, as when a reply is lost after the server did the work;
        timeout_after_acting: act, then hold the answer for `hang_seconds` and drop it (a worker
        killed while it waits never sees it).
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose one of {', '.join(FAULTS)}")
        injected = Fault(fault, path_pattern, method, times, retry_after, status, hang_seconds)
        with self.lock:
            self._faults.append(injected)
        return injected

    def error_body(self, status: int, code: str) -> dict:
        """The JSON body of an injected 429/5xx, in the shape this API's clients parse."""
        return {"ok": False, "error": code, "message": f"injected fault: {code}"}

    def _take_fault(self, request: Request) -> Fault | None:
        for fault in self._faults:
            if fault.times > 0 and fault.matches(request):
                fault.times -= 1
                self.faults_served.append((fault.kind, request.method, request.path))
                return fault
        return None

    def calls(self, path_pattern: str) -> list[Request]:
        """Requests received whose path matches the pattern, oldest first."""
        with self.lock:
            return [r for r in self.received if re.search(path_pattern, r.path)]

    # --- serving ----------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response | None:
        """The answer to `request`; None: close the connection without answering."""
        with self.lock:
            self.received.append(request)
            for i, (pattern, failure) in enumerate(self._queued_failures):
                if re.search(pattern, request.path):
                    del self._queued_failures[i]
                    return failure
            fault = self._take_fault(request)
        if fault is not None and fault.kind == "rate_limit":
            body = self.error_body(429, "ratelimited")
            return Response(429, body, headers={"Retry-After": str(fault.retry_after)})
        if fault is not None and fault.kind == "server_error":
            return Response(fault.status, self.error_body(fault.status, "internal_error"))
        if fault is not None and fault.kind == "hang":
            self._stopping.wait(fault.hang_seconds)
            return None
        if fault is not None and fault.kind == "drop":
            return None
        response = self._route(request)
        if fault is not None and fault.kind == "timeout_after_acting":
            self._stopping.wait(fault.hang_seconds)
            return None
        return None if fault is not None and fault.kind == "lost_answer" else response

    def _route(self, request: Request) -> Response:
        for method, pattern, handler in self._routes:
            found = pattern.match(request.path)
            if found and method == request.method:
                request.match = found.groupdict()
                with self.lock:
                    response = handler(request)
                    for i, (lost_method, pattern) in enumerate(self._lost_answers):
                        if lost_method == request.method and re.search(pattern, request.path):
                            del self._lost_answers[i]
                            return Response(502, {"message": "bad gateway"})
                    return response
        return Response(
            404, {"error": {"code": 404, "message": f"no route for {request.method} {request.path}"}}
        )

    def start(self, port: int = 0, host: str = "127.0.0.1") -> StandIn:
        stand_in = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                params = dict(parse_qsl(url.query, keep_blank_values=True))
                payload = None
                content_type = headers.get("content-type", "")
                if "application/json" in content_type and body:
                    payload = json.loads(body)
                    if isinstance(payload, dict):
                        params.update({k: v for k, v in payload.items() if isinstance(v, str)})
                elif "application/x-www-form-urlencoded" in content_type and body:
                    params.update(dict(parse_qsl(body.decode(), keep_blank_values=True)))
                request = Request(self.command, url.path, params, payload, body, headers)
                try:
                    response = stand_in.dispatch(request)
                except Exception as exc:  # a stand-in bug must show up as a 500, not a hang
                    response = Response(500, {"error": {"code": 500, "message": repr(exc)}})
                if response is None:  # an injected drop: the client sees the connection close
                    self.close_connection = True
                    return
                if isinstance(response.body, dict | list):
                    data = json.dumps(response.body).encode()
                elif isinstance(response.body, str):
                    data = response.body.encode()
                else:
                    data = response.body or b""
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(data)))
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        # serve_forever looks for a shutdown request every poll_interval: at the default 0.5 s each stop()
        # (every test's teardown) waited up to that; at 0.02 s (an idle select) it returns at once
        serve = functools.partial(self._server.serve_forever, poll_interval=0.02)
        threading.Thread(target=serve, name=self.name, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._stopping.set()  # release hung requests
        if self._server:
            self._server.shutdown()
            self._server.server_close()
