"""Incidents: one open incident per service, alerts and rollbacks hang off it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update

from rollback_bot.storage.errors import OpenIncidentExists
from rollback_bot.storage.models import AlertGroup, Incident, Rollback
from rollback_bot.storage.repositories._base import Repository, table_of


class IncidentRepository(Repository):
    def get(self, *, id: int) -> Incident | None:
        return self._session.get(Incident, id)

    def acknowledge(self, *, id: int, at: datetime, by: str) -> None:
        """The first person to act on the incident, if nobody has yet: one UPDATE, no load.

        A Core statement on the table, sent without flushing the session's pending changes
        first (they go at the commit's one flush) and without looking for the incident
        among its loaded objects (each about a millisecond on an approval's path): an
        incident loaded in this unit of work beforehand does not see the change.
        """
        table = table_of(Incident)
        with self._session.no_autoflush:
            self._session.execute(
                update(table)
                .where(table.c.id == id, table.c.acknowledged_at.is_(None))
                .values(acknowledged_at=at, acknowledged_by=by)
            )

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

    def for_message(self, *, channel: str, ts: str) -> tuple[int, ...]:
        """Ids of the incidents whose alert or rollback message (or thread) is ``ts``."""
        alerts = select(AlertGroup.incident_id).where(
            AlertGroup.channel == channel, AlertGroup.message_ts == ts
        )
        rollbacks = select(Rollback.incident_id).where(
            Rollback.channel == channel,
            or_(Rollback.message_ts == ts, Rollback.thread_ts == ts),
        )
        found = set(self._session.scalars(alerts)) | set(self._session.scalars(rollbacks))
        return tuple(sorted(i for i in found if i is not None))

    def open_for_services(self, *, services: Sequence[str]) -> tuple[Incident, ...]:
        stmt = select(Incident).where(Incident.service.in_(services), Incident.state == "open")
        return tuple(self._session.scalars(stmt.order_by(Incident.id)))

    def _open_id(self, service: str) -> int | None:
        found = self.open_for_service(service=service)
        return found.id if found else None
