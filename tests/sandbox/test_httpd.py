"""Servers report a client that hangs up in one line, and stop cleanly under load."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import requests

from rollback_bot.app import ServerThread
from sandbox.httpd import QuietThreadingHTTPServer


class _Resetting(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        raise ConnectionResetError(104, "Connection reset by peer")

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


class _Failing(_Resetting):
    def do_GET(self) -> None:
        raise RuntimeError("a real bug")


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[QuietThreadingHTTPServer, str]:
    server = QuietThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_dropped_client_is_one_log_line_and_no_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A handler on the logger itself: whatever logging setup earlier tests left behind
    # (levels, root handlers), this sees exactly what the server logs.
    logger = logging.getLogger("sandbox.httpd")
    seen = _Records()
    previous = logger.level
    logger.addHandler(seen)
    logger.setLevel(logging.INFO)
    logger.disabled = False
    server, url = _serve(_Resetting)
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=5)
        deadline = time.monotonic() + 5
        while not seen.records and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        server.shutdown()
        server.server_close()
        logger.removeHandler(seen)
        logger.setLevel(previous)
    assert len(seen.records) == 1
    assert (
        seen.records[0]
        .getMessage()
        .endswith("dropped the connection: [Errno 104] Connection reset by peer")
    )
    assert "Traceback" not in capsys.readouterr().err


def test_any_other_error_still_gets_its_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    server, url = _serve(_Failing)
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=5)
        deadline = time.monotonic() + 5
        while (
            "RuntimeError" not in (err := capsys.readouterr().err) and time.monotonic() < deadline
        ):
            time.sleep(0.01)
    finally:
        server.shutdown()
        server.server_close()
    assert "Traceback" in err and "a real bug" in err


def _slow_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    time.sleep(0.01)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_server_thread_stops_while_requests_are_in_flight(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The teardown race: workers finishing responses while the loop closes its channels.

    waitress's own ``close()`` of the server closes the trigger pipe at once; a worker
    finishing a response then pulls a closed pipe (``EBADF``, logged by waitress's task
    thread), or the stop itself does.
    """
    caplog.set_level(logging.ERROR, logger="waitress")
    errors: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)  # type: ignore[assignment]
    try:
        for _ in range(40):
            server = ServerThread(_slow_app, threads=4).start()
            stop_clients = threading.Event()

            def client(url: str = server.url, stop: threading.Event = stop_clients) -> None:
                with requests.Session() as session:
                    while not stop.is_set():
                        try:
                            session.get(url, timeout=2)
                        except requests.RequestException:
                            return

            clients = [threading.Thread(target=client) for _ in range(4)]
            for c in clients:
                c.start()
            time.sleep(0.02)
            server.stop()
            stop_clients.set()
            for c in clients:
                c.join(timeout=5)
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    finally:
        threading.excepthook = previous
    assert errors == []
    assert [r.getMessage() for r in caplog.records if r.name.startswith("waitress")] == []
    assert not [t for t in threading.enumerate() if t.name == "http" and t.is_alive()]


def test_stopping_twice_is_harmless() -> None:
    # A fixture's finalizer stopping what the test already stopped once wrote into the
    # closed trigger pipe: EBADF at teardown, or a stray byte in whatever reused the fd.
    server = ServerThread(_slow_app).start()
    assert requests.get(server.url, timeout=5).text == "ok"
    server.stop()
    server.stop()


def test_stopping_a_server_that_never_started_is_harmless() -> None:
    ServerThread(_slow_app).stop()
