"""One scheduler per SQLite database: an exclusive lock on a file beside it.

Two ``serve`` processes on one database would both run the scheduler, and every
job (an execution step, an approval expiry, a countdown) would run twice. With
SQLite both processes are on one machine, so an advisory ``flock`` on
``<database>.lock`` settles it: the kernel drops the lock when the holder exits,
even by SIGKILL, so a crash never leaves a stale lock behind. (PostgreSQL, where
processes may be on different machines, is the high-availability design's job.)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url


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
