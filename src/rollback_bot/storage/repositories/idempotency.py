"""Exactly-once processing of Slack retries and double clicks.

A claim is an INSERT that does nothing on conflict: the primary key decides the winner
atomically, across threads and processes, with no read-then-write window. The claim is
part of the unit of work, so if the work rolls back the key is free again.
:func:`claim_alone` is the same INSERT in its own short transaction on a bare connection,
for a claim that guards work done after it (no ORM session to set up and tear down).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, Insert, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from rollback_bot.storage.models import IdempotencyKey
from rollback_bot.storage.repositories._base import Repository, table_of


class IdempotencyRepository(Repository):
    def claim(self, *, key: str, at: datetime | None = None) -> bool:
        """True if this transaction is the first to claim ``key``, False if already claimed."""
        table = table_of(IdempotencyKey)
        stmt = (
            self._insert_statement(table)
            .values(key=key, created_at=at or datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=["key"])
            # RETURNING rather than rowcount: drivers disagree on rowcount for upserts.
            .returning(table.c.key)
        )
        return self._session.execute(stmt).first() is not None

    def purge_before(self, *, before: datetime) -> int:
        """Forget keys older than ``before`` (Slack stops retrying after minutes)."""
        table = table_of(IdempotencyKey)
        stmt = delete(table).where(table.c.created_at < before).returning(table.c.key)
        return len(self._session.execute(stmt).all())


def claim_alone(engine: Engine, *, key: str, at: datetime | None = None) -> bool:
    """Claim ``key`` in a transaction of its own: True for the first claimer, in any process.

    The INSERT is compiled once per engine and sent on the pooled driver connection: the
    same statement, values and transaction as through a SQLAlchemy ``Connection``, without
    its per-statement machinery (which was most of the claim's CPU). SQLite takes its
    write lock up front, as every writing transaction of the bot does.
    """
    claim = _claim_sql(engine)
    created_at = claim.created_at(at or datetime.now(UTC))
    params: Any = (key, created_at) if claim.positional else {"key": key, "created_at": created_at}
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            if claim.begin:
                cursor.execute(claim.begin)
            cursor.execute(claim.sql, params)
            fresh = cursor.fetchone() is not None
        finally:
            cursor.close()
        raw.commit()
    except BaseException:
        raw.invalidate()  # whatever state the connection is in, it is not handed out again
        raise
    finally:
        raw.close()
    return fresh


@dataclass(frozen=True)
class _ClaimSQL:
    sql: str
    positional: bool  # parameters in order (SQLite's ``?``) rather than by name
    begin: str | None  # what opens the transaction, when the driver does not
    created_at: Callable[[datetime], Any]  # the column type's own conversion for the driver


_CLAIMS: WeakKeyDictionary[Engine, _ClaimSQL] = WeakKeyDictionary()


def _claim_sql(engine: Engine) -> _ClaimSQL:
    claim = _CLAIMS.get(engine)
    if claim is None:
        dialect = engine.dialect
        compiled = _claim_statement(dialect.name).compile(dialect=dialect)
        if dialect.positional and compiled.positiontup != ["key", "created_at"]:
            raise RuntimeError(f"unexpected claim parameters {compiled.positiontup}")
        column = table_of(IdempotencyKey).c.created_at.type
        convert = column.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
        begin = "BEGIN IMMEDIATE" if dialect.name == "sqlite" else None  # see storage.engine
        claim = _CLAIMS[engine] = _ClaimSQL(compiled.string, dialect.positional, begin, convert)
    return claim


@cache
def _claim_statement(dialect: str) -> Insert:
    """The claim's INSERT, built once per dialect (building it was a third of its CPU)."""
    table = table_of(IdempotencyKey)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(table)
        .values(key=bindparam("key"), created_at=bindparam("created_at"))
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(table.c.key)
    )
