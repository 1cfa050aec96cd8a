"""Rollbacks and their approvals: at most one active rollback per service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from rollback_bot.storage.errors import ActiveRollbackExists, DuplicateApproval
from rollback_bot.storage.models import ACTIVE_ROLLBACK_STATES, Approval, Rollback
from rollback_bot.storage.repositories._base import Repository, concurrent_update_errors


class RollbackRepository(Repository):
    def get(self, *, id: int) -> Rollback | None:
        return self._session.get(Rollback, id)

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
    ) -> Approval:
        """Record a decision; raises :class:`DuplicateApproval` if ``actor`` already decided."""
        approval = Approval(
            rollback_id=rollback_id, actor=actor, decision=decision, at=at, reason=reason
        )
        return self._insert_or(approval, lambda _exc: DuplicateApproval(rollback_id, actor))

    def list_for(self, *, rollback_id: int) -> list[Approval]:
        stmt = (
            select(Approval)
            .where(Approval.rollback_id == rollback_id)
            .order_by(Approval.at, Approval.id)
        )
        return list(self._session.scalars(stmt))
