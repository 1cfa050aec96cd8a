"""Read-only SQL for the read commands (``export``, ``incidents``, ``verify-timeline``).

Those commands are over in a fraction of a second, and importing SQLAlchemy alone costs
them about 0.3 s of CPU on this machine, more than the interpreter and the query together.
So their queries are plain, portable SQL text with ``:name`` parameters, run through a
:class:`Reader`: on a SQLite file straight through the standard library's ``sqlite3``
(:func:`open_reader`), anywhere else (PostgreSQL, a unit of work's session, a test's
connection) through SQLAlchemy (:class:`SqlAlchemyReader`). Values come back as the driver
gives them; :func:`utc` and :func:`timestamp_param` hide the one difference that matters
(SQLite keeps ``UTCDateTime`` values as naive UTC text).

The schema is still checked as everywhere else: the database's ``alembic_version`` against
the newest migration, with :class:`~rollback_bot.storage.errors.DatabaseNotMigrated` when
they differ.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from rollback_bot.storage.errors import DatabaseNotMigrated

Params = Mapping[str, Any]


class Reader(Protocol):
    """Runs read-only SQL text (``:name`` parameters) and yields the rows as tuples."""

    dialect: str

    def rows(
        self, sql: str, params: Params | None = None, *, stream: bool = False
    ) -> Iterator[Sequence[Any]]: ...


class SqliteReader:
    """A stdlib ``sqlite3`` connection in a deferred (read) transaction."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(
        self, sql: str, params: Params | None = None, *, stream: bool = False
    ) -> Iterator[Sequence[Any]]:
        # sqlite3's cursor steps through the result as it is iterated: always streamed.
        return iter(self._conn.execute(sql, dict(params or {})))


class SqlAlchemyReader:
    """A SQLAlchemy ``Connection`` or ``Session`` (the app's units of work, PostgreSQL)."""

    def __init__(self, db: Any) -> None:
        self._db = db
        dialect = getattr(db, "dialect", None)
        self.dialect: str = (dialect or db.get_bind().dialect).name

    def rows(
        self, sql: str, params: Params | None = None, *, stream: bool = False
    ) -> Iterator[Sequence[Any]]:
        from sqlalchemy import text

        stmt = text(sql)
        if stream:  # a server-side cursor on PostgreSQL: constant memory
            stmt = stmt.execution_options(yield_per=2000)
        return iter(self._db.execute(stmt, dict(params or {})))


def as_reader(db: Any) -> Reader:
    """``db`` itself if it is a :class:`Reader`, else a SQLAlchemy connection or session."""
    if isinstance(db, SqliteReader | SqlAlchemyReader):
        return db
    return SqlAlchemyReader(db)


def in_list(name: str, values: Iterable[Any]) -> tuple[str, dict[str, Any]]:
    """``(:name0, :name1, ...)`` and its parameters, for ``column IN (...)``."""
    params = {f"{name}{i}": v for i, v in enumerate(values)}
    return "(" + ", ".join(f":{key}" for key in params) + ")", params


def utc(value: datetime | str | None) -> Any:
    """An aware UTC datetime from what the driver gave (SQLite: naive UTC text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_text(reader: Reader, column: str) -> str:
    """A JSON column selected as its text: SQLite stores the text (a cast only costs),
    PostgreSQL's driver would decode JSONB unless it is cast."""
    return column if reader.dialect == "sqlite" else f"CAST({column} AS TEXT)"


def timestamp_param(reader: Reader, at: datetime) -> Any:
    """``at`` as a query parameter compared with a ``UTCDateTime`` column."""
    at = at.astimezone(UTC)
    if reader.dialect == "sqlite":  # as SQLAlchemy's SQLite DATETIME writes it
        return at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return at


# -- opening a database ----------------------------------------------------------------------

_SQLITE_FILE = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<path>[^?#%]+)")


def sqlite_file(url: str) -> str | None:
    """The path of an existing SQLite database file named by ``url``, else None.

    Only the plain spellings (``sqlite:///relative.db``, ``sqlite:////absolute.db``) are
    read here; anything else (query options, escapes, ``:memory:``, a file that does not
    exist yet) goes through SQLAlchemy so it means what it always meant.
    """
    found = _SQLITE_FILE.fullmatch(url.strip())
    if found is None or found["path"] == ":memory:":
        return None
    path = found["path"]
    return path if Path(path).is_file() else None


def _sqlite_revisions(conn: sqlite3.Connection) -> list[str] | None:
    try:
        return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
    except sqlite3.OperationalError:  # no such table: never migrated
        return None


@contextmanager
def open_reader(url: str, *, check_schema: bool = True) -> Iterator[Reader]:
    """A :class:`Reader` on the database at ``url``, in one read-only transaction.

    ``check_schema=False`` skips the schema check up front; it is made only when a query
    fails, so a database that is behind says what to run instead of a driver error.
    """
    from rollback_bot.storage.migrator import head_revision

    path = sqlite_file(url)
    if path is None:
        with _sqlalchemy_reader(url, check_schema=check_schema) as reader:
            yield reader
        return
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:

        def ensure_up_to_date() -> None:
            current = _sqlite_revisions(conn)
            if current is None or len(current) != 1:
                if current:  # several heads: Alembic's own reading says which way
                    with _sqlalchemy_reader(url, check_schema=True):
                        return
                raise DatabaseNotMigrated(None, head_revision())
            if current[0] != head_revision():
                raise DatabaseNotMigrated(current[0], head_revision())

        if check_schema:
            ensure_up_to_date()
        conn.execute("BEGIN")  # deferred: one snapshot, never blocks the bot's writers
        try:
            yield SqliteReader(conn)
        except sqlite3.OperationalError:
            ensure_up_to_date()  # raises DatabaseNotMigrated, which the CLI words
            raise
        finally:
            conn.execute("ROLLBACK")
    finally:
        conn.close()


@contextmanager
def _sqlalchemy_reader(url: str, *, check_schema: bool) -> Iterator[Reader]:
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from rollback_bot.storage.engine import READ_ONLY_OPTION, make_engine
    from rollback_bot.storage.migrator import ensure_up_to_date

    engine = make_engine(url)
    try:
        if check_schema:
            ensure_up_to_date(engine)
        try:
            reader = engine.execution_options(**{READ_ONLY_OPTION: True})
            with reader.connect() as conn, conn.begin():
                yield SqlAlchemyReader(conn)
        except (OperationalError, ProgrammingError):
            ensure_up_to_date(engine)  # raises DatabaseNotMigrated, which the CLI words
            raise
    finally:
        engine.dispose()
