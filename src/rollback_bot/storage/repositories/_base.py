"""What every repository shares: a session it uses but never commits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from rollback_bot.storage.errors import ConcurrentUpdate

T = TypeVar("T")


@contextmanager
def concurrent_update_errors() -> Iterator[None]:
    """Turn SQLAlchemy's optimistic-lock failure into the domain's ConcurrentUpdate."""
    try:
        yield
    except StaleDataError as exc:
        raise ConcurrentUpdate(str(exc)) from exc


class Repository:
    def __init__(self, session: Session) -> None:
        self._session = session

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        """Run a write that may violate a constraint without poisoning the transaction.

        PostgreSQL aborts the whole transaction on an error; rolling back to a savepoint
        keeps it usable so the repository can look up the conflicting row and report it.
        """
        with self._session.begin_nested():
            yield

    def _insert_or(self, obj: T, on_conflict: Callable[[IntegrityError], Exception]) -> T:
        try:
            with self._savepoint():
                self._session.add(obj)
                self._session.flush()
        except IntegrityError as exc:
            raise on_conflict(exc) from exc
        return obj

    def _insert_statement(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that supports ON CONFLICT on the session's dialect."""
        if self._session.get_bind().dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)


def table_of(model: type) -> Table:
    """The Core table behind a mapped class, for bulk statements that bypass the ORM."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table
