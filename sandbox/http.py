"""A small base for the HTTP stand-ins: routes, request parsing, a record of what arrived, threads."""

from __future__ import annotations

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


class StandIn:
    """Subclasses register routes with `self.route(method, pattern, handler)` in `setup()`."""

    name = "stand-in"

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.received: list[Request] = []
        self.lock = threading.RLock()
        self._queued_failures: list[tuple[str, Response]] = []
        self._lost_answers: list[tuple[str, str]] = []
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

    def calls(self, path_pattern: str) -> list[Request]:
        """Requests received whose path matches the pattern, oldest first."""
        with self.lock:
            return [r for r in self.received if re.search(path_pattern, r.path)]

    # --- serving ----------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        with self.lock:
            self.received.append(request)
            for i, (pattern, failure) in enumerate(self._queued_failures):
                if re.search(pattern, request.path):
                    del self._queued_failures[i]
                    return failure
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
        threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
