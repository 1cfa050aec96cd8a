"""A real Alertmanager for tests, and a loopback webhook receiver to catch it.

The webhook parsers are only as good as our knowledge of what Alertmanager
really sends; hand-written fixtures drift from the real thing. This module
runs the actual binary (Debian's ``prometheus-alertmanager``) on loopback
ports with a throwaway config and storage directory, so tests can post alerts
through its API and check what arrives at the webhook.

When the binary is missing the fixture skips with the reason, so a developer
machine without it still runs everything else; CI installs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from sandbox.httpd import QuietThreadingHTTPServer
from tests.support import tools

BINARY_NAMES = ("prometheus-alertmanager", "alertmanager")
READY_TIMEOUT = 30.0  # generous: a loaded 2-core CI machine starts Go binaries slowly


class AlertmanagerUnavailable(RuntimeError):
    """No Alertmanager binary on this machine."""


def find_binary() -> str | None:
    """``$ALERTMANAGER_BIN`` if set, else the first known name on ``PATH``."""
    explicit = os.environ.get("ALERTMANAGER_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return next((p for p in map(shutil.which, BINARY_NAMES) if p), None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AlertmanagerProcess:
    """The real Alertmanager on a loopback port, routing everything to one webhook."""

    def __init__(
        self,
        *,
        webhook_url: str,
        group_wait: str = "1s",
        group_interval: str = "1s",
        repeat_interval: str = "1h",
        group_by: Sequence[str] = ("alertname", "service"),
        bearer_token: str | None = None,
        binary: str | None = None,
    ) -> None:
        found = binary or find_binary()
        if found is None:
            raise AlertmanagerUnavailable(
                f"no Alertmanager binary ({' or '.join(BINARY_NAMES)}) on PATH "
                "and ALERTMANAGER_BIN not set"
            )
        self._binary = found
        self._dir = Path(tempfile.mkdtemp(prefix="alertmanager-"))
        self._config = self._dir / "alertmanager.yml"
        self._config.write_text(
            yaml.safe_dump(
                _config(
                    webhook_url=webhook_url,
                    group_wait=group_wait,
                    group_interval=group_interval,
                    repeat_interval=repeat_interval,
                    group_by=group_by,
                    bearer_token=bearer_token,
                )
            ),
            encoding="utf-8",
        )
        self._log_path = self._dir / "alertmanager.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        # The port is picked then released, so another process may take it in
        # between; a failed start is retried on a fresh port.
        problem = ""
        for _ in range(3):
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}"
            with self._log_path.open("wb") as log:
                self._process = subprocess.Popen(
                    [
                        self._binary,
                        f"--config.file={self._config}",
                        f"--storage.path={self._dir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--cluster.listen-address=",
                        "--log.level=warn",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_ready():
                return
            problem = self.log()
            self._terminate()
        raise RuntimeError(f"Alertmanager did not become ready:\n{problem}")

    def _wait_ready(self) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return True
            time.sleep(0.05)
        return False

    def log(self) -> str:
        """Alertmanager's own output so far (for failure messages)."""
        try:
            return self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Post alerts through API v2 (``labels``, ``annotations``, ``startsAt``, ``endsAt``...)."""
        response = requests.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=10)
        if response.status_code != 200:
            raise RuntimeError(
                f"Alertmanager refused alerts: {response.status_code} {response.text}"
            )

    def alerts(self) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v2/alerts", timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def silences(self) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v2/silences", timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        """Terminate the process and remove its config and rollback_bot.storage. Idempotent."""
        self._terminate()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> AlertmanagerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _config(
    *,
    webhook_url: str,
    group_wait: str,
    group_interval: str,
    repeat_interval: str,
    group_by: Sequence[str],
    bearer_token: str | None,
) -> dict[str, Any]:
    webhook: dict[str, Any] = {"url": webhook_url, "send_resolved": True}
    if bearer_token is not None:
        webhook["http_config"] = {"authorization": {"credentials": bearer_token}}
    return {
        "route": {
            "receiver": "rollback_bot",
            "group_by": list(group_by),
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [{"name": "rollback_bot", "webhook_configs": [webhook]}],
    }


@dataclass(frozen=True)
class Delivery:
    """One webhook request as received."""

    path: str
    headers: dict[str, str]
    body: Any


class WebhookReceiver:
    """A loopback HTTP server that records every POST and answers 200."""

    def __init__(self) -> None:
        deliveries: queue.Queue[Delivery] = queue.Queue()
        self._deliveries = deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", errors="replace")
                deliveries.put(Delivery(self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._server = QuietThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def next(self, *, timeout: float = 30.0) -> Delivery:
        """The next delivery; ``TimeoutError`` if none arrives in time."""
        try:
            return self._deliveries.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no webhook delivery within {timeout}s") from None

    def wait_for(self, predicate: Callable[[Delivery], bool], *, timeout: float = 30.0) -> Delivery:
        """The first delivery satisfying ``predicate``; others are discarded."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching webhook delivery within {timeout}s")
            delivery = self.next(timeout=remaining)
            if predicate(delivery):
                return delivery

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def alertmanager_factory() -> Iterator[Callable[..., AlertmanagerProcess]]:
    """``alertmanager_factory(webhook_url=..., **options)`` starts one; all stop at teardown.

    Skips the test (fails it under CI) when no Alertmanager binary is installed.
    """
    if find_binary() is None:
        tools.missing("Alertmanager", "apt install prometheus-alertmanager")
    started: list[AlertmanagerProcess] = []

    def start(**options: Any) -> AlertmanagerProcess:
        process = AlertmanagerProcess(**options)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver
