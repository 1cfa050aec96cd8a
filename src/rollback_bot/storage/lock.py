"""One scheduler per SQLite database: an exclusive lock on a file beside it.

Two ``serve`` processes on one database would both run the scheduler, and every
job (an execution step, an approval expiry, a countdown) would run twice. With
SQLite both processes are on one machine, so an advisory ``flock`` on
``<database>.lock`` settles it: the kernel drops the lock when the holder exits,
even by SIGKILL, so a crash never leaves a stale lock behind.

On PostgreSQL processes may be on different machines: there, replicas elect a
leader on a Kubernetes Lease (LEADER_ELECTION=true) and only the leader runs jobs.
Without leader election, ``PgSchedulerLock`` holds a session-level advisory lock
on a connection kept open for the life of ``serve``; PostgreSQL drops it when that
connection ends, also when the process is killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from rollback_bot.storage.engine import make_engine


class AlreadyRunning(Exception):
    """Another process holds the database's scheduler lock; the message says which."""


def sqlite_file(database_url: str) -> Path | None:
    """The database file of a file-backed SQLite URL; None for memory or other databases."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:") or "mode=memory" in str(url.query):
        return None
    return Path(url.database).resolve()


class SchedulerLock:
    """Held from ``acquire`` until ``release`` (or the process ends)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def for_database(cls, database_url: str) -> SchedulerLock | None:
        database = sqlite_file(database_url)
        return None if database is None else cls(database.with_name(database.name + ".lock"))

    def acquire(self) -> SchedulerLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another rollback-bot serve (pid {holder}) already runs on this database "
                f"(it holds {self.path}); two schedulers on one database would run every "
                "job twice: stop it first, or give this one its own DATABASE_URL"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the descriptor drops the lock
        self._fd = None


#: The advisory lock key of "the scheduler of this database" (any fixed 64-bit number).
PG_SCHEDULER_LOCK_KEY = 0x726F6C6C6261636B  # "rollback"


class PgSchedulerLock:
    """A PostgreSQL session advisory lock, held from ``acquire`` until ``release``."""

    def __init__(self, database_url: str) -> None:
        self._engine = make_engine(database_url, pool_size=1, max_overflow=0)
        self._conn: Connection | None = None

    @classmethod
    def for_database(cls, database_url: str) -> PgSchedulerLock | None:
        url = make_url(database_url.replace("postgres://", "postgresql://", 1))
        return cls(database_url) if url.get_backend_name() == "postgresql" else None

    def acquire(self) -> PgSchedulerLock:
        conn = self._engine.connect()
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": PG_SCHEDULER_LOCK_KEY}
        ).scalar()
        conn.commit()
        if not got:
            holder = conn.execute(
                text(
                    "SELECT a.pid, coalesce(host(a.client_addr), 'local') FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                    "AND l.granted AND (l.classid::bigint << 32 | l.objid::bigint) = :key"
                ),
                {"key": PG_SCHEDULER_LOCK_KEY},
            ).first()
            conn.close()
            self._engine.dispose()
            who = f"database session pid {holder[0]} from {holder[1]}" if holder else "unknown"
            raise AlreadyRunning(
                "another rollback-bot serve already runs on this PostgreSQL database "
                f"(it holds the scheduler's advisory lock: {who}); two schedulers on one "
                "database would run every job twice: stop it first, or run replicas with "
                "LEADER_ELECTION=true so that only the Lease holder runs jobs"
            )
        self._conn = conn
        return self

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(Exception):
            self._conn.close()  # ending the session drops the lock
        self._conn = None
        self._engine.dispose()
