"""Rollbacks and their approvals: at most one active rollback per service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.orm import make_transient_to_detached

from rollback_bot.storage.driver import compiled_for, first_row
from rollback_bot.storage.errors import ActiveRollbackExists, DuplicateApproval
from rollback_bot.storage.models import ACTIVE_ROLLBACK_STATES, Approval, Rollback
from rollback_bot.storage.repositories._base import (
    Repository,
    concurrent_update_errors,
    table_of,
)

_BY_ID = select(Rollback).where(Rollback.id == bindparam("id")).execution_options(autoflush=False)
_ROW_BY_ID = select(*Rollback.__table__.c).where(Rollback.__table__.c.id == bindparam("id"))


def read_rollback(engine: Engine, *, id: int) -> Rollback | None:
    """Rollback ``id`` as stored, read alone on the pooled driver connection.

    What a read-only unit of work's ``rollbacks.get`` returns once its block has ended (a
    detached object, every column loaded, the same values), without a session: a session's
    set-up, ORM loading and tear-down, and SQLAlchemy's per-statement machinery, were most
    of the read's CPU (``storage.driver``). For reads that stand alone.
    """
    read = compiled_for(engine, "rollback by id", lambda: _ROW_BY_ID)
    row = first_row(engine, read, {"id": id}, write=False)
    if row is None:
        return None
    rollback = Rollback(**row)
    make_transient_to_detached(rollback)  # as if loaded by a session since closed
    return rollback


class RollbackRepository(Repository):
    def get(self, *, id: int) -> Rollback | None:
        if self._session.identity_map:  # something is loaded: the session looks there first
            return self._session.get(Rollback, id)
        # Nothing loaded yet (a read on its own): the same row through a statement built
        # once, without autoflush as Session.get; Session.get builds its query every time.
        return self._session.execute(_BY_ID, {"id": id}).scalar_one_or_none()

    def attach(self, row: Rollback) -> Rollback:
        """``row`` as read before this unit of work (unchanged since), to write on here
        without reading it again. Its ``version`` goes into the UPDATE's WHERE, so a row
        that moved meanwhile is not overwritten: the flush raises ``ConcurrentUpdate``."""
        return self._session.merge(row, load=False)

    def active_for_service(self, *, service: str) -> Rollback | None:
        stmt = select(Rollback).where(
            Rollback.service == service, Rollback.state.in_(ACTIVE_ROLLBACK_STATES)
        )
        return self._session.scalars(stmt).first()

    def list_by_state(self, *, states: Sequence[str]) -> list[Rollback]:
        stmt = select(Rollback).where(Rollback.state.in_(list(states))).order_by(Rollback.id)
        return list(self._session.scalars(stmt))

    def list_for_incident(self, *, incident_id: int) -> list[Rollback]:
        stmt = select(Rollback).where(Rollback.incident_id == incident_id).order_by(Rollback.id)
        return list(self._session.scalars(stmt))

    def list(self, *, limit: int = 50) -> list[Rollback]:
        """Newest first."""
        stmt = select(Rollback).order_by(Rollback.id.desc()).limit(limit)
        return list(self._session.scalars(stmt))

    def add(self, *, rollback: Rollback | None = None, **fields: Any) -> Rollback:
        """Insert ``rollback`` (or one built from ``fields``) and assign its id.

        Raises :class:`ActiveRollbackExists` when the service already has an active one;
        the transaction stays usable.
        """
        if rollback is None:
            rollback = Rollback(**fields)
        elif fields:
            raise TypeError("pass either rollback= or field keywords, not both")
        service = rollback.service
        return self._insert_or(
            rollback, lambda _exc: ActiveRollbackExists(service, self._active_id(service))
        )

    def flush(self, *, rollback: Rollback) -> None:
        """Write pending changes to ``rollback`` now rather than at commit.

        Raises :class:`ConcurrentUpdate` if another transaction changed it since it was
        loaded; useful before doing side effects that depend on winning the transition.
        """
        with concurrent_update_errors():
            self._session.flush([rollback])

    # The runner's progress columns are written only by the runner, one job per rollback at
    # a time, so these two are plain UPDATEs that leave ``version`` alone: a person's click
    # racing the start of a step must not be refused as a concurrent change.
    def mark_applying(self, *, id: int, step: int) -> None:
        """Note that ``step``'s writes are about to start, before the first of them.

        Until the step's outcome is recorded (``record_step``), a restarted runner reads
        this as "its writes may or may not have landed" and asks instead of repeating it.
        """
        self._session.execute(
            update(Rollback).where(Rollback.id == id).values(applying_step=step),
            execution_options={"synchronize_session": False},
        )

    def count_failed_attempt(self, *, id: int) -> int:
        """One more failed try of the rollback's current job; the count including it."""
        self._session.execute(
            update(Rollback).where(Rollback.id == id).values(attempts=Rollback.attempts + 1),
            execution_options={"synchronize_session": False},
        )
        return int(self._session.scalars(select(Rollback.attempts).where(Rollback.id == id)).one())

    def record_step(self, *, rollback: Rollback, next_step: int) -> None:
        """A step's writes are recorded: ``next_step`` is due, nothing is in flight, no failures."""
        rollback.step = next_step
        rollback.applying_step = None
        rollback.attempts = 0

    def _active_id(self, service: str) -> int | None:
        found = self.active_for_service(service=service)
        return found.id if found else None


class ApprovalRepository(Repository):
    def add(
        self,
        *,
        rollback_id: int,
        actor: str,
        decision: str,
        at: datetime,
        reason: str | None = None,
    ) -> None:
        """Record a decision; raises :class:`DuplicateApproval` if ``actor`` already decided.

        One ``INSERT ... ON CONFLICT DO NOTHING``: the unique key answers a second decision
        by an empty result instead of an error, so no savepoint (two statements more, on
        the path from an approval to the rollback it starts) has to contain one.
        """
        table = table_of(Approval)
        insert = self._insert_statement(table)
        stmt = (
            insert.values(
                rollback_id=rollback_id, actor=actor, decision=decision, at=at, reason=reason
            )
            .on_conflict_do_nothing(index_elements=[table.c.rollback_id, table.c.actor])
            .returning(table.c.id)
        )
        if self._session.execute(stmt).first() is None:
            raise DuplicateApproval(rollback_id, actor)

    def decisions(self, *, rollback_id: int) -> list[tuple[str, str]]:
        """``(actor, decision)`` in the order they were made, read in this transaction.

        Core columns, not ``Approval`` objects, read without flushing the session first:
        the writers on an approval's path need only these, and their pending changes go
        at the commit's one flush (approvals are only ever written by ``add``'s INSERT,
        straight away, so none is pending).
        """
        table = table_of(Approval)
        stmt = (
            select(table.c.actor, table.c.decision)
            .where(table.c.rollback_id == rollback_id)
            .order_by(table.c.at, table.c.id)
        )
        with self._session.no_autoflush:
            return [(actor, decision) for actor, decision in self._session.execute(stmt)]

    def list_for(self, *, rollback_id: int) -> list[Approval]:
        stmt = (
            select(Approval)
            .where(Approval.rollback_id == rollback_id)
            .order_by(Approval.at, Approval.id)
        )
        return list(self._session.scalars(stmt))
