"""Exactly-once processing of Slack retries and double clicks.

A claim is an INSERT that does nothing on conflict: the primary key decides the winner
atomically, across threads and processes, with no read-then-write window. The claim is
part of the unit of work, so if the work rolls back the key is free again.
:func:`claim_alone` is the same INSERT in its own short transaction on a bare connection,
for a claim that guards work done after it (no ORM session to set up and tear down).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from sqlalchemy import Engine, Insert, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from rollback_bot.storage.driver import compiled_for, first_row
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

    The same INSERT, sent on the pooled driver connection (``storage.driver``): through a
    SQLAlchemy ``Connection`` its machinery was most of the claim's CPU.
    """
    claim = compiled_for(engine, "claim", lambda: _claim_statement(engine.dialect.name))
    values = {"key": key, "created_at": at or datetime.now(UTC)}
    return first_row(engine, claim, values, write=True) is not None


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
