"""Engines configured for how the bot uses its database: many short, concurrent writes.

SQLite is the zero-setup default and PostgreSQL the production choice; both are reached
through :func:`make_engine` so connection settings (WAL, busy timeout, foreign keys,
pooling, liveness) are decided once, here.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

from rollback_bot.storage.liveness import PING_AFTER_IDLE_S, check_at_checkout

DEFAULT_URL = "sqlite:///rollback-bot.db"

#: How long a SQLite writer waits for the lock before giving up (milliseconds). Long enough
#: to ride out an alert storm; each transaction holds the lock only for a few milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: Execution option selecting a deferred (read-only) transaction on SQLite.
READ_ONLY_OPTION = "rollback_bot_read_only"

_PG_PREFIXES = ("postgres://", "postgresql://")


def normalise_url(url: str) -> str:
    """Return ``url`` with PostgreSQL spellings mapped to the psycopg 3 driver.

    Hosting platforms hand out ``postgres://`` and ``postgresql://`` URLs; SQLAlchemy would
    read those as psycopg2 (or reject them), while the bot ships psycopg 3.
    """
    url = url.strip()
    for prefix in _PG_PREFIXES:
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str = DEFAULT_URL, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (normalised) ready for concurrent use from many threads.

    On a server, a pooled connection is checked at checkout without a round trip, and
    pinged when it sat idle ``ping_after`` seconds (``storage.liveness``); pass
    ``pool_pre_ping=True`` to ping at every checkout instead. Other keyword arguments go
    to :func:`sqlalchemy.create_engine`.
    """
    url = normalise_url(url)
    ping_after = kwargs.pop("ping_after", PING_AFTER_IDLE_S)
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        check_at_checkout(engine, ping_after=ping_after)
    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def read_only_engine(engine: Engine) -> Engine:
    """``engine`` for units of work that only read.

    On SQLite a deferred transaction, which never takes the write lock. On a server the
    connection is in autocommit: at READ COMMITTED (the server's default, which the bot
    keeps) every statement already reads its own snapshot, so a reader's BEGIN and
    ROLLBACK bought nothing and cost two round trips, as many as its queries on the alert
    path. A reader that writes would therefore commit at once there: readers must not
    write (``UnitOfWorkFactory``).
    """
    if is_sqlite(engine):
        return engine.execution_options(**{READ_ONLY_OPTION: True})
    return engine.execution_options(**{READ_ONLY_OPTION: True}, isolation_level="AUTOCOMMIT")


def snapshot_engine(engine: Engine) -> Engine:
    """``engine`` for a read that must see one moment across its statements.

    A postmortem's incident, rollbacks and timeline then agree with each other, and its
    timeline can stream through a server-side cursor, which needs a transaction. SQLite's
    deferred transaction already reads one snapshot (WAL); PostgreSQL is asked for a
    read-only REPEATABLE READ transaction.
    """
    if engine.dialect.name != "postgresql":
        return engine.execution_options(**{READ_ONLY_OPTION: True})
    return engine.execution_options(
        **{READ_ONLY_OPTION: True}, isolation_level="REPEATABLE READ", postgresql_readonly=True
    )


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    connect_args = kwargs.pop("connect_args", {})
    # The web server and scheduler share connections across threads; the pool hands each
    # connection to one thread at a time, so the driver's own thread check only gets in the way.
    connect_args.setdefault("check_same_thread", False)
    database = make_url(url).database
    if not database or database == ":memory:":
        # One shared connection, otherwise every checkout would see its own empty database.
        kwargs.setdefault("poolclass", StaticPool)
    else:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the driver (it would BEGIN lazily and break
    # SAVEPOINTs); _begin_sqlite_transaction issues BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # WAL is durable at transaction boundaries with NORMAL; FULL would fsync every commit.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_sqlite_transaction(conn: Any) -> None:
    # A deferred transaction that reads and then writes cannot wait for the lock when another
    # writer committed in between (SQLITE_BUSY_SNAPSHOT fails at once, busy_timeout does not
    # apply). Taking the write lock up front makes writers queue on busy_timeout instead.
    # Read-only units of work keep a deferred BEGIN so they never block writers.
    begin = "BEGIN" if conn.get_execution_options().get(READ_ONLY_OPTION) else "BEGIN IMMEDIATE"
    if conn.dialect.driver != "pysqlite":
        conn.exec_driver_sql(begin)
        return
    # Straight to the driver: a statement through SQLAlchemy costs more CPU than a short
    # read's own query. Its errors read as SQLAlchemy's would (a lock not had in time is
    # sqlalchemy.exc.OperationalError).
    try:
        conn.connection.dbapi_connection.execute(begin)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(begin, (), exc, sqlite3.Error, dialect=conn.dialect) from exc
