"""Release verdicts: which releases of a service were rolled back from, verified or marked."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from rollback_bot.storage.models import ReleaseVerdict
from rollback_bot.storage.repositories._base import Repository


class ReleaseVerdictRepository(Repository):
    def add(
        self,
        *,
        service: str,
        template_hash: str | None,
        images: str,
        verdict: str,
        source: str,
        actor: str,
        at: datetime,
        reason: str = "",
        incident_id: int | None = None,
        rollback_id: int | None = None,
    ) -> ReleaseVerdict:
        row = ReleaseVerdict(
            service=service,
            template_hash=template_hash,
            images=images,
            verdict=verdict,
            source=source,
            actor=actor,
            reason=reason,
            incident_id=incident_id,
            rollback_id=rollback_id,
            at=at,
        )
        self._session.add(row)
        self._session.flush()
        return row

    def list_for_service(self, *, service: str) -> list[ReleaseVerdict]:
        """Oldest first: a later verdict on the same release overrides an earlier one."""
        stmt = (
            select(ReleaseVerdict)
            .where(ReleaseVerdict.service == service)
            .order_by(ReleaseVerdict.at, ReleaseVerdict.id)
        )
        return list(self._session.scalars(stmt))
