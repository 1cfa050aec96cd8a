"""Load what a postmortem needs with targeted queries: Core selects of the printed columns.

No ORM objects are built and each event's ``data`` stays JSON text until a reader asks
for it (Markdown and HTML never do; the JSON writer splices the text in as it is). The
tables are named here as lightweight Core ``table()`` constructs of just the columns read,
so ``rollback-bot export`` imports neither the ORM nor the models (a third of its start-up
on this machine), nor the Kubernetes or Slack clients. ``storage/models.py`` stays the
schema's one definition; the tests read every column named here from a migrated database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Union

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, cast, column, select, table
from sqlalchemy.engine import Connection

from rollback_bot.incidents import postmortem
from rollback_bot.incidents.postmortem import (
    AlertInfo,
    ApprovalInfo,
    Context,
    Names,
    Postmortem,
    RollbackInfo,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def _ts(name: str) -> Any:
    return column(name, DateTime(timezone=True))


Incident = table(
    "incidents",
    column("id", Integer),
    column("service", String),
    column("title", Text),
    column("state", String),
    _ts("opened_at"),
    _ts("acknowledged_at"),
    column("acknowledged_by", String),
    _ts("mitigated_at"),
    _ts("resolved_at"),
).c
TimelineEvent = table(
    "timeline_events",
    column("id", Integer),
    column("incident_id", Integer),
    column("rollback_id", Integer),
    _ts("at"),
    column("actor", String),
    column("kind", String),
    column("summary", Text),
    column("data", JSON),
).c
Rollback = table(
    "rollbacks",
    *(column(n, Integer) for n in ("id", "incident_id")),
    *(column(n, String) for n in ("service", "environment", "strategy", "state")),
    *(column(n, String) for n in ("requested_by", "reason", "from_revision", "to_revision")),
    *(column(n, String) for n in ("from_image", "to_image", "channel", "message_ts")),
    column("thread_ts", String),
    column("drill", Boolean),
    column("automatic", Boolean),
    _ts("created_at"),
    _ts("finished_at"),
    column("plan", JSON),
    column("error", Text),
).c
Approval = table(
    "approvals",
    column("id", Integer),
    column("rollback_id", Integer),
    column("actor", String),
    column("decision", String),
    column("reason", Text),
    _ts("at"),
).c
AlertGroup = table(
    "alert_groups",
    column("id", Integer),
    column("incident_id", Integer),
    column("alertname", String),
    column("severity", String),
    _ts("first_seen"),
    _ts("resolved_at"),
    column("status", String),
    column("channel", String),
    column("message_ts", String),
).c


def utc(value: datetime | None) -> Any:
    """SQLite hands back naive UTC wall-clock times (as ``UTCDateTime`` stores them)."""
    if value is None or value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Event:
    """One timeline row; ``data`` is decoded on first use."""

    __slots__ = ("_data", "actor", "at", "data_json", "kind", "rollback_id", "summary")

    def __init__(
        self,
        at: datetime,
        actor: str,
        kind: str,
        summary: str,
        rollback_id: int | None,
        data_json: str | None,
    ) -> None:
        self.at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        self.actor = actor
        self.kind = kind
        self.summary = summary
        self.rollback_id = rollback_id
        self.data_json = data_json or "{}"
        self._data: Any = None

    @property
    def data(self) -> Any:
        if self._data is None:
            self._data = json.loads(self.data_json)
        return self._data


@dataclass
class IncidentRow:
    id: int
    service: str
    title: str
    state: str
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    mitigated_at: datetime | None
    resolved_at: datetime | None


_INCIDENT_COLUMNS = (
    Incident.id,
    Incident.service,
    Incident.title,
    Incident.state,
    Incident.opened_at,
    Incident.acknowledged_at,
    Incident.acknowledged_by,
    Incident.mitigated_at,
    Incident.resolved_at,
)

Db = Union["Session", Connection]


def incident(db: Db, incident_id: int) -> IncidentRow | None:
    row = db.execute(select(*_INCIDENT_COLUMNS).where(Incident.id == incident_id)).first()
    return None if row is None else _incident_row(row)


def _incident_row(row: Any) -> IncidentRow:
    i, service, title, state, opened, acked, acked_by, mitigated, resolved = row
    return IncidentRow(
        i, service, title, state, utc(opened), utc(acked), acked_by, utc(mitigated), utc(resolved)
    )


def events(db: Db, incident_id: int) -> list[Event]:
    stmt = (
        select(
            TimelineEvent.at,
            TimelineEvent.actor,
            TimelineEvent.kind,
            TimelineEvent.summary,
            TimelineEvent.rollback_id,
            cast(TimelineEvent.data, Text),
        )
        .where(TimelineEvent.incident_id == incident_id)
        .order_by(TimelineEvent.at, TimelineEvent.id)
    )
    return [Event(*row) for row in db.execute(stmt)]


def rollbacks(db: Db, incident_id: int) -> list[RollbackInfo]:
    rows = db.execute(
        select(
            Rollback.id,
            Rollback.strategy,
            Rollback.state,
            Rollback.requested_by,
            Rollback.environment,
            Rollback.reason,
            Rollback.drill,
            Rollback.automatic,
            Rollback.from_revision,
            Rollback.to_revision,
            Rollback.from_image,
            Rollback.to_image,
            Rollback.created_at,
            Rollback.finished_at,
            Rollback.plan,
            Rollback.error,
        )
        .where(Rollback.incident_id == incident_id)
        .order_by(Rollback.id)
    ).all()
    ids = [r.id for r in rows]
    approvals: dict[int, list[ApprovalInfo]] = {i: [] for i in ids}
    if ids:
        for a in db.execute(
            select(
                Approval.rollback_id,
                Approval.actor,
                Approval.decision,
                Approval.at,
                Approval.reason,
            )
            .where(Approval.rollback_id.in_(ids))
            .order_by(Approval.at, Approval.id)
        ):
            approvals[a.rollback_id].append(ApprovalInfo(a.actor, a.decision, utc(a.at), a.reason))
    return [
        RollbackInfo(
            id=r.id,
            strategy=r.strategy,
            state=r.state,
            requested_by=r.requested_by,
            environment=r.environment,
            reason=r.reason or "",
            drill=bool(r.drill),
            automatic=bool(r.automatic),
            from_revision=r.from_revision,
            to_revision=r.to_revision,
            from_image=r.from_image,
            to_image=r.to_image,
            created_at=utc(r.created_at),
            finished_at=utc(r.finished_at),
            changes=tuple(str(c) for c in (r.plan or {}).get("changes") or ()),
            error=r.error,
            approvals=tuple(approvals[r.id]),
        )
        for r in rows
    ]


def alerts(db: Db, incident_id: int) -> list[AlertInfo]:
    rows = db.execute(
        select(
            AlertGroup.alertname,
            AlertGroup.severity,
            AlertGroup.first_seen,
            AlertGroup.resolved_at,
            AlertGroup.status,
        )
        .where(AlertGroup.incident_id == incident_id)
        .order_by(AlertGroup.first_seen)
    )
    return [AlertInfo(n, sev, utc(first), utc(res), st) for n, sev, first, res, st in rows]


def load(
    db: Db,
    incident_id: int,
    *,
    names: Names | None = None,
    context: Context | None = None,
) -> Postmortem | None:
    found = incident(db, incident_id)
    if found is None:
        return None
    return postmortem.analyse(
        found,
        events(db, incident_id),
        rollbacks=rollbacks(db, incident_id),
        alerts=alerts(db, incident_id),
        context=context,
        names=names,
    )


# -- the list of incidents, with their metrics ------------------------------------------------


@dataclass(frozen=True)
class IncidentSummary:
    id: int
    service: str
    opened_at: datetime
    state: str
    time_to_acknowledge_seconds: float | None
    time_to_mitigate_seconds: float | None
    outcome: str

    def as_json(self) -> dict[str, Any]:
        from rollback_bot.ids import format_incident_id

        return {
            "id": format_incident_id(self.id),
            "service": self.service,
            "opened_at": self.opened_at.isoformat(),
            "state": self.state,
            "time_to_acknowledge_seconds": self.time_to_acknowledge_seconds,
            "time_to_mitigate_seconds": self.time_to_mitigate_seconds,
            "outcome": self.outcome,
        }


_LIST_KINDS = ("alert.firing", "incident.mitigated", "incident.resolved")


def list_incidents(
    db: Db,
    *,
    service: str | None = None,
    since: date | datetime | None = None,
    states: Sequence[str] | None = None,
    limit: int = 50,
) -> list[IncidentSummary]:
    """Newest first, with TTA, TTM and outcome computed as the postmortem computes them,
    from the few timeline rows that decide them (alerts, people, mitigation, resolution)."""
    stmt = select(*_INCIDENT_COLUMNS).order_by(Incident.opened_at.desc(), Incident.id.desc())
    if service is not None:
        stmt = stmt.where(Incident.service == service)
    if since is not None:
        stmt = stmt.where(Incident.opened_at >= _as_datetime(since))
    if states is not None:
        stmt = stmt.where(Incident.state.in_(list(states)))
    found = [_incident_row(row) for row in db.execute(stmt.limit(limit))]
    if not found:
        return []
    ids = [i.id for i in found]
    per: dict[int, list[Event]] = {i: [] for i in [0, *ids]}
    rows = db.execute(
        select(
            TimelineEvent.incident_id,
            TimelineEvent.at,
            TimelineEvent.actor,
            TimelineEvent.kind,
            TimelineEvent.summary,
            TimelineEvent.rollback_id,
            cast(TimelineEvent.data, Text),
        )
        .where(TimelineEvent.incident_id.in_(ids))
        .where(
            TimelineEvent.kind.in_(_LIST_KINDS)
            | (~TimelineEvent.actor.in_(_NOT_PEOPLE) & ~TimelineEvent.kind.startswith("alert."))
        )
        .order_by(TimelineEvent.at, TimelineEvent.id)
    )
    for r in rows:
        per[r[0] or 0].append(Event(*r[1:]))
    rb = {i: rollbacks(db, i) for i in ids}
    out = []
    for i in found:
        pm = postmortem.analyse(i, per[i.id], rollbacks=rb[i.id])
        metrics = pm.head["metrics"]
        out.append(
            IncidentSummary(
                id=i.id,
                service=i.service,
                opened_at=i.opened_at,
                state=i.state,
                time_to_acknowledge_seconds=metrics["time_to_acknowledge_seconds"],
                time_to_mitigate_seconds=metrics["time_to_mitigate_seconds"],
                outcome=pm.head["summary"]["outcome"],
            )
        )
    return out


#: Actors that are never people, left out of the list's query (the postmortem's
#: ``is_person`` decides the rest).
_NOT_PEOPLE = ("rollback-bot", "kubernetes", "alertmanager", "grafana", "generic")


def _as_datetime(value: date | datetime) -> datetime:
    from datetime import UTC, time

    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time(0), tzinfo=UTC)


def thread_of(db: Db, incident_id: int, channel: str) -> str | None:
    """The incident's thread in ``channel``: its first alert group's message there, else
    the first of its rollbacks' messages there."""
    found = db.execute(
        select(AlertGroup.message_ts)
        .where(AlertGroup.incident_id == incident_id)
        .where(AlertGroup.channel == channel)
        .where(AlertGroup.message_ts.is_not(None))
        .order_by(AlertGroup.first_seen, AlertGroup.id)
        .limit(1)
    ).scalar()
    if found:
        return str(found)
    row = db.execute(
        select(Rollback.thread_ts, Rollback.message_ts)
        .where(Rollback.incident_id == incident_id)
        .where(Rollback.channel == channel)
        .order_by(Rollback.id)
        .limit(1)
    ).first()
    ts = None if row is None else (row.thread_ts or row.message_ts)
    return None if ts is None else str(ts)
