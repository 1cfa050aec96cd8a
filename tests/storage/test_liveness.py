"""A pooled PostgreSQL connection is checked at checkout without a query, and replaced
when the server has ended it; one idle long enough is pinged as well."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from rollback_bot.storage import db
from rollback_bot.storage.liveness import check_at_checkout


@pytest.fixture
def server_url(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        pytest.skip(
            "liveness is checked on server connections (set ROLLBACK_BOT_TEST_DATABASE_URL)"
        )
    return database_url


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def one(server_url: str, clock: Clock) -> Iterator[Engine]:
    """An engine of one pooled connection, checked at checkout on a clock the test moves."""
    engine = create_engine(server_url, pool_size=1, max_overflow=0)
    check_at_checkout(engine, ping_after=30.0, clock=clock)
    yield engine
    engine.dispose()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    real = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        calls.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return calls


def test_a_connection_the_server_ended_is_replaced_without_an_error(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = db.make_engine(server_url, pool_size=1, max_overflow=0)  # as the bot makes it
    try:
        ended_while_pooled(one, server_url, monkeypatch)
    finally:
        one.dispose()


def ended_while_pooled(one: Engine, server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = backend_pid(one)
    calls = pings(one, monkeypatch)
    observer = db.make_engine(server_url)
    try:
        with observer.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
            # The backend is gone once it left pg_stat_activity; its FATAL is on the socket.
            deadline = time.monotonic() + 10
            while conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            ).scalar_one():
                assert time.monotonic() < deadline, "the backend outlived its termination"
                time.sleep(0.05)
    finally:
        observer.dispose()
    assert backend_pid(one) != pid  # a fresh connection, and the statement ran
    assert calls == []  # found on the socket: no ping


def test_only_a_connection_idle_long_enough_is_pinged(
    one: Engine, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = backend_pid(one)
    calls = pings(one, monkeypatch)
    clock.now += 29.0
    assert backend_pid(one) == pid and calls == []  # polled only
    clock.now += 30.0
    assert backend_pid(one) == pid and len(calls) == 1  # idle 30 s: pinged, and alive


def test_a_connection_failing_its_ping_is_replaced(
    one: Engine, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A connection dropped silently (a firewall forgot it) shows nothing on its socket.
    pid = backend_pid(one)
    real = one.dialect.do_ping
    failed: list[int] = []

    def ping(dbapi_connection: Any) -> bool:
        if not failed:
            failed.append(1)
            raise one.dialect.loaded_dbapi.OperationalError("server closed the connection")
        return real(dbapi_connection)

    monkeypatch.setattr(one.dialect, "do_ping", ping)
    clock.now += 60.0
    assert backend_pid(one) != pid and failed == [1]
