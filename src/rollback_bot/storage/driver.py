"""One statement in a transaction of its own, sent on the pooled driver connection.

For the few statements on the path behind every Slack click (the retry claim, the first
read of a rollback): through a SQLAlchemy ``Connection`` each paid several times the
driver's own work in per-statement machinery (connection and transaction objects, events,
execution context, result set-up). Here the statement is compiled once per engine, and its
values and results go through the column types' own conversions, as SQLAlchemy's would:
the same SQL, the same stored forms, the same Python values back. Driver errors are raised
as SQLAlchemy's (``sqlalchemy.exc.OperationalError`` and so on); the connection they
happened on is not handed out again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Insert, Select

Statement = Insert | Select[Any]
_Convert = Callable[[Any], Any]


class DriverStatement:
    """``statement`` compiled for one dialect, with its parameters' and columns' conversions."""

    def __init__(self, statement: Statement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        #: Parameter names in the order a positional driver takes them (SQLite's ``?``).
        self.order = list(compiled.positiontup or []) if dialect.positional else None
        self._binds: dict[str, _Convert | None] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        self._columns: list[tuple[str, _Convert | None]] = [
            (str(column.key), column.type.dialect_impl(dialect).result_processor(dialect, None))
            for column in statement.exported_columns
        ]

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        converted = {
            name: value if (convert := self._binds.get(name)) is None else convert(value)
            for name, value in values.items()
        }
        return converted if self.order is None else tuple(converted[n] for n in self.order)

    def row(self, row: Any) -> dict[str, Any]:
        return {
            key: value if convert is None else convert(value)
            for (key, convert), value in zip(self._columns, row, strict=True)
        }


_COMPILED: WeakKeyDictionary[Engine, dict[str, DriverStatement]] = WeakKeyDictionary()


def compiled_for(engine: Engine, name: str, build: Callable[[], Statement]) -> DriverStatement:
    """The statement ``name`` (made by ``build``) compiled for ``engine``, once."""
    by_name = _COMPILED.setdefault(engine, {})
    statement = by_name.get(name)
    if statement is None:
        statement = by_name[name] = DriverStatement(build(), engine.dialect)
    return statement


def first_row(
    engine: Engine, statement: DriverStatement, values: Mapping[str, Any], *, write: bool
) -> dict[str, Any] | None:
    """Run ``statement`` with ``values`` alone in a transaction; its first row, if any.

    ``write``: the transaction commits. On SQLite the statement is its own transaction
    (the connection runs in autocommit, see ``storage.engine``): it waits for the write
    lock on ``busy_timeout`` as a ``BEGIN IMMEDIATE`` would, since nothing was read in it
    before (a deferred transaction fails at once only when it read before writing). A read
    ends with the connection's return to the pool, which rolls back.
    """
    params = statement.params(values)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(statement.sql, params)
            row = cursor.fetchone()
        finally:
            cursor.close()
        if write:
            raw.commit()
    except engine.dialect.loaded_dbapi.Error as exc:
        raw.invalidate()
        raise DBAPIError.instance(
            statement.sql, params, exc, engine.dialect.loaded_dbapi.Error, dialect=engine.dialect
        ) from exc
    except BaseException:
        raw.invalidate()  # whatever state it is in, the connection is not handed out again
        raise
    finally:
        raw.close()
    return None if row is None else statement.row(row)
