"""Automatic-trigger firings, kept so cooldowns and per-window caps survive restarts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from rollback_bot.storage.models import TriggerFiring
from rollback_bot.storage.repositories._base import Repository


class TriggerFiringRepository(Repository):
    def add(
        self, *, service: str, rule: str, at: datetime, rollback_id: int | None = None
    ) -> TriggerFiring:
        firing = TriggerFiring(service=service, rule=rule, at=at, rollback_id=rollback_id)
        self._session.add(firing)
        self._session.flush()
        return firing

    def count_since(self, *, service: str, since: datetime, rule: str | None = None) -> int:
        """Firings for ``service`` at or after ``since``; all rules unless ``rule`` is given."""
        stmt = select(func.count()).where(
            TriggerFiring.service == service, TriggerFiring.at >= since
        )
        if rule is not None:
            stmt = stmt.where(TriggerFiring.rule == rule)
        return int(self._session.scalar(stmt) or 0)

    def last(self, *, service: str, rule: str) -> TriggerFiring | None:
        stmt = (
            select(TriggerFiring)
            .where(TriggerFiring.service == service, TriggerFiring.rule == rule)
            .order_by(TriggerFiring.at.desc(), TriggerFiring.id.desc())
            .limit(1)
        )
        return self._session.scalars(stmt).first()
