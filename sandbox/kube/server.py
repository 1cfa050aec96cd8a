"""The HTTP/1.1 shell around `Api`: keep-alive, chunked watch streams, clean shutdown.

Clients keep connections open (urllib3 pools, kubectl's transport), so the server
tracks every connection and its thread; `close()` shuts the sockets and joins the
threads, which is what lets tests assert that nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..httpd import QuietThreadingHTTPServer
from .api import Request, Response, WatchStream

AdminHandler = Callable[[str, str, bytes], Response | None]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, delayed ACKs add ~40 ms.
    disable_nagle_algorithm = True
    server: KubeHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        del format, args  # request logging would drown test output

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path.startswith("/_sandbox/"):
            answer = self.server.admin(self.command, url.path, body)
            self._send(answer or Response(404, {"error": "unknown admin endpoint"}))
            return
        if self.server.latency() > 0:
            time.sleep(self.server.latency())
        req = Request(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers=self.headers,
            body=body,
            groups=[
                group.strip()
                for header in self.headers.get_all("Impersonate-Group") or []
                for group in header.split(",")
                if group.strip()
            ],
        )
        result = self.server.api.handle(req)
        if self.server.reply_latency() > 0 and self.command != "GET":
            # The write is stored; only its answer is late (a client killed now never
            # learns that its write landed).
            time.sleep(self.server.reply_latency())
        if isinstance(result, WatchStream):
            self._stream(result)
        else:
            self._send(result)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _send(self, response: Response) -> None:
        if isinstance(response.body, str):
            payload, ctype = response.body.encode(), "text/plain; charset=utf-8"
        else:
            payload, ctype = json.dumps(response.body).encode(), "application/json"
        self.send_response(response.code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, stream: WatchStream) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        try:
            for event in stream.events:
                data = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        finally:
            close = getattr(stream.events, "close", None)
            if close is not None:
                close()


class KubeHTTPServer(QuietThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        api: Any,
        admin: AdminHandler,
        latency: Callable[[], float],
        *,
        port: int = 0,
        reply_latency: Callable[[], float] = lambda: 0.0,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.api = api
        self.admin = admin
        self.latency = latency
        self.reply_latency = reply_latency
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._conn_lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="kube-emulator-conn",
            daemon=True,
        )
        with self._conn_lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End idle keep-alive reads first so watch streams can write their last chunk."""
        with self._conn_lock:
            connections = list(self._connections.items())
        for how in (socket.SHUT_RD, socket.SHUT_RDWR):
            for sock, _ in connections:
                with contextlib.suppress(OSError):
                    sock.shutdown(how)
            for _, thread in connections:
                if thread is not threading.current_thread():
                    thread.join(timeout=2 if how == socket.SHUT_RD else 5)
            connections = [(s, t) for s, t in connections if t.is_alive()]
            if not connections:
                return
