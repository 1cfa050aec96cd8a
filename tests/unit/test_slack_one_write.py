"""The Slack client's connections send a request's header block and body in one write."""

from __future__ import annotations

from typing import Any

import pytest

from rollback_bot.slack.transport import _OneWrite, _OneWriteHTTPS


class _Socket:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def settimeout(self, _timeout: Any) -> None:
        pass


def _connection(cls: type[_OneWrite] = _OneWrite) -> tuple[_OneWrite, _Socket]:
    connection = cls("slack.test", 443 if cls is _OneWriteHTTPS else 80)
    sock = _Socket()
    connection.sock = sock
    return connection, sock


@pytest.mark.parametrize("cls", [_OneWrite, _OneWriteHTTPS], ids=["http", "https"])
def test_a_request_with_a_body_is_one_write_of_the_same_bytes(cls: type[_OneWrite]) -> None:
    connection, sock = _connection(cls)
    connection.request("POST", "/api/chat.postEphemeral", body=b"text=hi", headers={"X-A": "1"})
    assert len(sock.writes) == 1
    head, body = sock.writes[0].split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /api/chat.postEphemeral HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 7" in head and b"\r\nX-A: 1" in head
    assert body == b"text=hi"


def test_a_request_without_a_body_sends_its_header_block() -> None:
    connection, sock = _connection()
    connection.request("GET", "/api/api.test")
    assert len(sock.writes) == 1 and sock.writes[0].endswith(b"\r\n\r\n")

    connection, sock = _connection()
    connection.request("POST", "/api/api.test", body=b"")
    assert len(sock.writes) == 1 and b"\r\nContent-Length: 0\r\n" in sock.writes[0]
