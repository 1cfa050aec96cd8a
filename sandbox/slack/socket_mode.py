"""A loopback Socket Mode endpoint speaking Slack's envelope protocol.

In Socket Mode Slack pushes slash commands, interactions and events over a
websocket and waits for an ack carrying the same `envelope_id`. This server
issues single-use connection tickets (via `apps.connections.open`), greets
each client with Slack's `hello`, lets tests push envelopes and hands back
the client's ack.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
import uuid
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

ENVELOPE_TYPES = ("slash_commands", "interactive", "events_api")
SOCKET_PATH = "/socket-mode"


class SocketModeServer:
    def __init__(self, *, app_id: str) -> None:
        self.app_id = app_id
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._tickets: set[str] = set()
        self._connections: list[ServerConnection] = []
        # Connections told to reconnect: still open, but no longer sent envelopes.
        self._retiring: set[ServerConnection] = set()
        self._acks: dict[str, dict[str, Any]] = {}
        self._changed = threading.Condition()
        self.connects = 0

    def start(self) -> SocketModeServer:
        self._server = serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._check_ticket,
            ping_interval=None,  # the Slack client pings; server pings only add noise
            close_timeout=1,
            compression=None,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="slack-socket-mode", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.socket.getsockname()[1])

    def issue_url(self) -> str:
        """What `apps.connections.open` returns: a websocket URL with a fresh ticket."""
        ticket = secrets.token_hex(16)
        with self._changed:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}{SOCKET_PATH}?ticket={ticket}&app_id={self.app_id}"

    def _check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        ticket = parse_qs(url.query).get("ticket", [""])[0]
        with self._changed:
            valid = url.path == SOCKET_PATH and ticket in self._tickets
            self._tickets.discard(ticket)  # tickets are single-use, as on Slack
        if valid:
            return None
        return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid ticket\n")

    def _handle(self, connection: ServerConnection) -> None:
        connection.send(json.dumps(self._hello()))
        with self._changed:
            self._connections.append(connection)
            self.connects += 1
            self._changed.notify_all()
        try:
            for message in connection:
                self._receive(message)
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                self._connections.remove(connection)
                self._retiring.discard(connection)
                self._changed.notify_all()

    def _hello(self) -> dict[str, Any]:
        with self._changed:
            count = len(self._connections) + 1
        return {
            "type": "hello",
            "num_connections": count,
            "debug_info": {"host": "applink-sandbox", "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }

    def _receive(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except ValueError:
            return
        if isinstance(data, dict) and isinstance(data.get("envelope_id"), str):
            with self._changed:
                self._acks[data["envelope_id"]] = data
                self._changed.notify_all()

    def connected(self, timeout: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: bool(self._live()), timeout)

    @property
    def connection_count(self) -> int:
        with self._changed:
            return len(self._live())

    def _live(self) -> list[ServerConnection]:
        return [c for c in self._connections if c not in self._retiring]

    def send(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        timeout: float = 5.0,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
    ) -> dict[str, Any]:
        """Push one envelope to the newest connection and return the client's ack."""
        if envelope_type not in ENVELOPE_TYPES:
            raise ValueError(f"envelope_type must be one of {ENVELOPE_TYPES}")
        deadline = time.monotonic() + timeout
        envelope = _envelope(envelope_type, payload, retry_attempt, retry_reason)
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self._live()), timeout):
                raise TimeoutError("no Socket Mode client connected")
            target = self._live()[-1]
        target.send(json.dumps(envelope))
        envelope_id = envelope["envelope_id"]
        with self._changed:
            acked = self._changed.wait_for(
                lambda: envelope_id in self._acks, max(0.0, deadline - time.monotonic())
            )
            if not acked:
                raise TimeoutError(f"envelope {envelope_id} was not acknowledged")
            return self._acks.pop(envelope_id)

    def disconnect_all(self, reason: str = "refresh_requested") -> None:
        """Slack's `disconnect` message: clients are expected to reconnect on a new URL."""
        message = json.dumps(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-sandbox"}}
        )
        with self._changed:
            targets = self._live()
            self._retiring.update(targets)
        for connection in targets:
            with contextlib.suppress(ConnectionClosed):
                connection.send(message)


def _envelope(
    envelope_type: str,
    payload: dict[str, Any],
    retry_attempt: int | None,
    retry_reason: str | None,
) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "envelope_id": str(uuid.uuid4()),
        "type": envelope_type,
        "payload": payload,
        # Slack accepts a response payload in the ack for commands and interactions only.
        "accepts_response_payload": envelope_type != "events_api",
    }
    if envelope_type == "events_api":
        envelope["retry_attempt"] = retry_attempt or 0
        envelope["retry_reason"] = retry_reason or ""
    return envelope
