"""The incident timeline: an append-only audit log and the source of every postmortem.

There is deliberately no update or delete here; the database refuses them as well. Every
entry is sealed onto its hash chain at flush (``rollback_bot.storage.chain``, imported
here so that whoever writes the timeline seals it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from rollback_bot.redaction import redact_text, redact_tree
from rollback_bot.storage import chain as _chain  # noqa: F401  (seals entries at flush)
from rollback_bot.storage.models import TimelineEvent
from rollback_bot.storage.repositories._base import Repository


class TimelineRepository(Repository):
    def append(
        self,
        *,
        at: datetime,
        actor: str,
        kind: str,
        summary: str,
        incident_id: int | None = None,
        rollback_id: int | None = None,
        service: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> TimelineEvent:
        """Record one entry; ``kind`` is normally a ``rollback_bot.timeline.TimelineKind``.

        Secret-looking values in ``summary`` and ``data`` are redacted before they
        are stored (``rollback_bot.redaction``): the timeline is exported and shown.
        """
        event = TimelineEvent(
            at=at,
            actor=actor,
            kind=str(kind),  # the plain value, never an enum member, in the row and the session
            summary=redact_text(summary),
            incident_id=incident_id,
            rollback_id=rollback_id,
            service=service,
            data=dict(redact_tree(data or {})),
        )
        self._session.add(event)
        return event

    def list_for_incident(self, *, incident_id: int) -> list[TimelineEvent]:
        """Oldest first; includes events of the incident's rollbacks that name it."""
        return self._list(TimelineEvent.incident_id == incident_id)

    def list_for_rollback(self, *, rollback_id: int) -> list[TimelineEvent]:
        return self._list(TimelineEvent.rollback_id == rollback_id)

    def list_for_service(
        self, *, service: str, since: datetime | None = None
    ) -> list[TimelineEvent]:
        condition = TimelineEvent.service == service
        if since is not None:
            condition = condition & (TimelineEvent.at >= since)
        return self._list(condition)

    def first_in_windows(
        self, *, service: str, kind: str, windows: Iterable[tuple[datetime, datetime]]
    ) -> list[datetime]:
        """For each ``(start, end)`` window, the time of the first ``kind`` event in it.

        Windows without such an event give nothing. One statement selects one indexed
        lookup per window (``ix_timeline_events_service_kind_at``) as a scalar subquery:
        a service with a long timeline costs no more than a new one, no event is loaded
        as an object, and many windows still cost one round trip to a database server.
        """
        firsts = [
            select(TimelineEvent.at)
            .where(
                TimelineEvent.service == service,
                TimelineEvent.kind == str(kind),
                TimelineEvent.at >= start,
                TimelineEvent.at <= end,
            )
            .order_by(TimelineEvent.at)
            .limit(1)
            .scalar_subquery()
            for start, end in windows
        ]
        if not firsts:
            return []
        row = self._session.execute(select(*firsts)).one()
        return [at for at in row if at is not None]

    def _list(self, condition: Any) -> list[TimelineEvent]:
        stmt = select(TimelineEvent).where(condition).order_by(TimelineEvent.at, TimelineEvent.id)
        return list(self._session.scalars(stmt))
