"""Idle, half-sent connections cannot starve Slack of its 3-second answer.

A client that sends headers and one byte of its body, then waits, holds a
connection open. The HTTP server reads requests in its event loop and hands a
worker only a complete request, so such clients cost a socket each, not a
thread; the connection limit is high enough for a crowd of them, and the idle
ones are closed after ``CHANNEL_TIMEOUT`` seconds.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from sandbox.stack import LoopbackStack
from tests.e2e.conftest import ALICE, CHANNEL
from tests.e2e.test_slack_commands import told

# Slack, alerts and HTTP only: the real control plane would repeat the emulator run.
pytestmark = pytest.mark.kube_free

SLOW_CLIENTS = 150  # more than waitress's default limit of 100 connections


@contextlib.contextmanager
def half_sent_connections(url: str, count: int) -> Iterator[list[socket.socket]]:
    parts = urlsplit(url)
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
            sock.sendall(
                b"POST /slack/events HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 500\r\n\r\nt"
            )
            opened.append(sock)
        yield opened
    finally:
        for sock in opened:
            sock.close()


def test_a_signed_command_is_answered_while_150_clients_hang_half_sent(
    stack: LoopbackStack,
) -> None:
    with half_sent_connections(stack.url, SLOW_CLIENTS):
        # Slack gives up after 3 seconds: a request not answered by then is a lost one.
        driver = stack.driver
        driver.timeout = 3.0
        answer = driver.command("help", user_id=ALICE, channel_id=CHANNEL)
        assert answer.status_code == 200
        assert "/rollback approve" in told(stack, ALICE, answer)
