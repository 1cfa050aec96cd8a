"""Incidents: one open incident per service, alerts and rollbacks hang off it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from rollback_bot.storage.errors import OpenIncidentExists
from rollback_bot.storage.models import Incident
from rollback_bot.storage.repositories._base import Repository


class IncidentRepository(Repository):
    def get(self, *, id: int) -> Incident | None:
        return self._session.get(Incident, id)

    def open_for_service(self, *, service: str) -> Incident | None:
        stmt = select(Incident).where(Incident.service == service, Incident.state == "open")
        return self._session.scalars(stmt).first()

    def add(self, *, service: str, title: str, opened_at: datetime) -> Incident:
        """Open an incident; raises :class:`OpenIncidentExists` if one is already open."""
        incident = Incident(service=service, title=title, state="open", opened_at=opened_at)
        return self._insert_or(
            incident,
            lambda _exc: OpenIncidentExists(service, self._open_id(service)),
        )

    def open_or_add(
        self, *, service: str, title: str, opened_at: datetime
    ) -> tuple[Incident, bool]:
        """The open incident for ``service``, opening one if needed; ``(incident, created)``.

        Safe when two alert deliveries race: the loser gets the winner's incident.
        """
        existing = self.open_for_service(service=service)
        if existing is not None:
            return existing, False
        try:
            return self.add(service=service, title=title, opened_at=opened_at), True
        except OpenIncidentExists:
            winner = self.open_for_service(service=service)
            if winner is None:
                raise
            return winner, False

    def list(self, *, limit: int = 50, states: Sequence[str] | None = None) -> list[Incident]:
        """Newest first."""
        stmt = select(Incident).order_by(Incident.opened_at.desc(), Incident.id.desc())
        if states is not None:
            stmt = stmt.where(Incident.state.in_(list(states)))
        return list(self._session.scalars(stmt.limit(limit)))

    def _open_id(self, service: str) -> int | None:
        found = self.open_for_service(service=service)
        return found.id if found else None
