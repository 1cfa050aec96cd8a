"""The stand-in's HTTP face: Web API, upload URLs, response_urls and admin routes.

A plain ThreadingHTTPServer keeps a call around a millisecond and starts
instantly. It speaks HTTP/1.1, so a client may keep its connection open between
calls as Slack lets it (``connections`` counts those accepted); open sockets are
tracked, so stopping the server (or ``abort_open_connections``, Slack hanging up
on idle clients) never leaves a handler thread behind.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.httpd import QuietThreadingHTTPServer
from sandbox.slack.bodies import decode_args, multipart_file
from sandbox.slack.calls import CallLog
from sandbox.slack.faults import FaultPlan
from sandbox.slack.workspace import SlackError, Workspace

RESPONSE_URL_METHOD = "response_url"
UPLOAD_METHOD = "file_upload"


class Backend:
    """Everything a request handler needs, shared by all handler threads."""

    def __init__(self, workspace: Workspace, calls: CallLog, faults: FaultPlan) -> None:
        self.workspace = workspace
        self.calls = calls
        self.faults = faults
        self.latency = 0.0
        self.stopping = threading.Event()
        self.connections = 0  # TCP connections accepted


class StandInHTTPServer(QuietThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins every handler thread

    def __init__(self, address: tuple[str, int], backend: Backend) -> None:
        self.backend = backend
        self._open: set[socket.socket] = set()
        self._serials: dict[socket.socket, int] = {}  # each open connection's number
        self._open_lock = threading.Lock()
        super().__init__(address, SlackRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
            self.backend.connections += 1
            self._serials[request] = self.backend.connections
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
            self._serials.pop(request, None)
        super().shutdown_request(request)

    def serial(self, request: socket.socket) -> int:
        """The number of the connection (1 for the first accepted) a request came on."""
        with self._open_lock:
            return self._serials.get(request, 0)

    def abort_open_connections(self) -> None:
        """Unblock handlers waiting on idle clients so server_close() can join them."""
        with self._open_lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class SlackRequestHandler(BaseHTTPRequestHandler):
    server: StandInHTTPServer
    protocol_version = "HTTP/1.1"  # every answer has a Content-Length
    # Headers and body are two writes: on a kept-alive connection Nagle's algorithm would
    # hold the second until the client's delayed ACK (40 ms on Linux) of the first.
    disable_nagle_algorithm = True
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: benchmarks make hundreds of calls."""

    @property
    def backend(self) -> Backend:
        return self.server.backend

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        try:
            body = self._read_body()
            if path.startswith("/api/"):
                self._web_api(path[len("/api/") :], body, url.query)
            elif path.startswith("/upload/v1/"):
                self._upload(path.rsplit("/", 1)[-1], body)
            elif path.startswith("/hooks/"):
                self._response_url(path.split("/", 3)[-1], body)
            elif path.startswith("/_sandbox/"):
                self._admin(path[len("/_sandbox/") :], body, url.query)
            else:
                self._send_json(404, {"ok": False, "error": "not_found"})
        except (ValueError, KeyError, TypeError) as exc:
            self._send_json(400, {"ok": False, "error": "invalid_request", "detail": str(exc)})

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunks()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunks(self) -> bytes:
        """A chunked body, read to its end so the next request on the connection starts clean."""
        body = bytearray()
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            body += self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return bytes(body)

    def _content_type(self) -> str:
        return self.headers.get("Content-Type") or "application/x-www-form-urlencoded"

    def _web_api(self, method: str, body: bytes, query: str) -> None:
        backend = self.backend
        if backend.latency > 0:
            # Waiting on the stop event keeps shutdown prompt under injected latency.
            backend.stopping.wait(backend.latency)
        args = decode_args(self._content_type(), body, query)
        token = self._bearer_token() or args.get("token")
        recorded = {k: v for k, v in args.items() if k != "token"}
        fault = backend.faults.take(method)
        if fault is not None:
            status, headers, payload = fault.response()
        else:
            status, headers = 200, {}
            try:
                backend.workspace.authorize(method, token)
                payload = backend.workspace.call(method, args)
            except SlackError as exc:
                payload = {"ok": False, "error": exc.error}
        backend.calls.record(
            method,
            recorded,
            status=status,
            ok=bool(payload.get("ok")),
            connection=self.server.serial(self.connection),
        )
        self._send_json(status, payload, headers)

    def _bearer_token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else None

    def _upload(self, file_id: str, body: bytes) -> None:
        content_type = self._content_type()
        content = body
        if content_type.startswith("multipart/form-data"):
            content = multipart_file(content_type, body) or b""
        stored = self.backend.workspace.receive_upload(file_id, content)
        status = 200 if stored else 404
        self.backend.calls.record(
            UPLOAD_METHOD, {"file_id": file_id, "size": len(content)}, status=status, ok=stored
        )
        self._send_text(status, f"OK - {len(content)}" if stored else "file_not_found")

    def _response_url(self, token: str, body: bytes) -> None:
        try:
            payload: Any = json.loads(body or b"null")
        except ValueError:
            payload = None
        status, text = self.backend.workspace.post_response(token, payload)
        recorded = payload if isinstance(payload, dict) else {}
        self.backend.calls.record(RESPONSE_URL_METHOD, recorded, status=status, ok=status == 200)
        self._send_text(status, text)

    def _admin(self, route: str, body: bytes, query: str) -> None:
        backend = self.backend
        data = json.loads(body) if body else {}
        if route == "calls":
            method = parse_qs(query).get("method", [None])[0]
            calls = backend.calls.all() if method is None else backend.calls.for_method(method)
            self._send_json(200, {"ok": True, "calls": [_jsonable(c) for c in calls]})
        elif route == "faults" and self.command == "POST":
            backend.faults.inject(
                data["method"],
                status=int(data.get("status", 429)),
                retry_after=int(data.get("retry_after", 1)),
                count=int(data.get("count", 1)),
                error=data.get("error"),
            )
            self._send_json(200, {"ok": True})
        elif route == "latency" and self.command == "POST":
            backend.latency = float(data.get("seconds", 0))
            self._send_json(200, {"ok": True, "seconds": backend.latency})
        elif route == "messages":
            channel = parse_qs(query).get("channel", [""])[0]
            self._send_json(200, {"ok": True, "messages": backend.workspace.messages(channel)})
        elif route == "message":
            params = parse_qs(query)
            found = backend.workspace.find_message(
                params.get("channel", [""])[0], params.get("ts", [""])[0]
            )
            self._send_json(200 if found else 404, {"ok": found is not None, "message": found})
        elif route == "ephemerals":
            user = parse_qs(query).get("user", [None])[0]
            self._send_json(200, {"ok": True, "ephemerals": backend.workspace.ephemerals(user)})
        elif route == "views":
            self._send_json(200, {"ok": True, "views": backend.workspace.views})
        elif route == "users":
            self._send_json(200, {"ok": True, "users": backend.workspace.users})
        elif route == "response-urls" and self.command == "POST":
            url = backend.workspace.new_response_url(
                channel=data.get("channel"),
                user_id=data.get("user_id"),
                message_ts=data.get("message_ts"),
            )
            self._send_json(200, {"ok": True, "response_url": url})
        elif route == "trigger-ids" and self.command == "POST":
            trigger_id = backend.workspace.new_trigger_id(user_id=data.get("user_id"))
            self._send_json(200, {"ok": True, "trigger_id": trigger_id})
        else:
            self._send_json(404, {"ok": False, "error": "not_found"})

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers)

    def _send_text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8", None)

    def _send(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _jsonable(value: Any) -> Any:
    """Call records for the admin route: bytes become a length marker."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    return value
