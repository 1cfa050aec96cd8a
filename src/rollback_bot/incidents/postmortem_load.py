"""Load what a postmortem needs with targeted queries of the printed columns.

No ORM objects are built and each event's ``data`` stays JSON text until a reader asks
for it (Markdown and HTML never do; the JSON writer splices the text in as it is). The
queries are plain SQL text run through a :class:`~rollback_bot.storage.reader.Reader`:
``rollback-bot export`` and ``incidents`` read a SQLite file through the standard
library's ``sqlite3`` and import neither SQLAlchemy, the ORM, the models nor the
Kubernetes or Slack clients (most of their start-up on this machine); the app passes its
session, PostgreSQL a SQLAlchemy connection. ``storage/models.py`` stays the schema's one
definition; the tests run every query here on a migrated database, SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

from rollback_bot.incidents import postmortem
from rollback_bot.incidents.postmortem import (
    AlertInfo,
    ApprovalInfo,
    Context,
    Names,
    Postmortem,
    RollbackInfo,
)
from rollback_bot.storage.reader import as_reader, in_list, json_text, timestamp_param
from rollback_bot.storage.reader import utc as utc

_fromisoformat = datetime.fromisoformat

#: A :class:`~rollback_bot.storage.reader.Reader`, or a SQLAlchemy session or connection.
Db = Any


class Event:
    """One timeline row; ``data`` is decoded on first use."""

    __slots__ = ("_data", "actor", "at", "data_json", "iso", "kind", "rollback_id", "summary")

    def __init__(
        self,
        at: datetime | str,
        actor: str,
        kind: str,
        summary: str,
        rollback_id: int | None,
        data_json: str | None,
    ) -> None:
        if type(at) is str:  # SQLite: naive UTC text (one C call, 10,000 times per export)
            try:
                self.at = _fromisoformat(at + "+00:00")
            except ValueError:  # another spelling, or an offset of its own
                self.at = utc(at)
                self.iso = self.at.isoformat()
            else:
                self.iso = _iso_of_sqlite(at) or self.at.isoformat()
        else:
            self.at = utc(at)
            self.iso = self.at.isoformat()
        self.actor = actor
        self.kind = kind
        self.summary = summary
        self.rollback_id = rollback_id
        if data_json is not None and type(data_json) is not str:  # SQLite's NUMERIC affinity
            data_json = json.dumps(data_json)
        self.data_json = data_json or "{}"
        self._data: Any = None

    @property
    def data(self) -> Any:
        if self._data is None:
            self._data = json.loads(self.data_json)
        return self._data


def _iso_of_sqlite(at: str) -> str | None:
    """``isoformat()`` of the UTC time SQLite keeps as ``YYYY-MM-DD HH:MM:SS.ffffff`` (as
    SQLAlchemy writes it), from the text: a few slices instead of eight ``sprintf`` calls
    per event; None for any other spelling. Only for text ``fromisoformat`` accepted."""
    if len(at) != 26 or at[10] != " " or at[19] != ".":
        return None
    if at[20:] == "000000":  # isoformat leaves out a zero fraction
        return f"{at[:10]}T{at[11:19]}+00:00"
    return f"{at[:10]}T{at[11:]}+00:00"


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
    "incidents.id, incidents.service, incidents.title, incidents.state, incidents.opened_at, "
    "incidents.acknowledged_at, incidents.acknowledged_by, incidents.mitigated_at, "
    "incidents.resolved_at"
)
_EVENT_COLUMNS = "at, actor, kind, summary, rollback_id, {data}"


def incident(db: Db, incident_id: int) -> IncidentRow | None:
    sql = f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE incidents.id = :id"
    row = next(as_reader(db).rows(sql, {"id": incident_id}), None)
    return None if row is None else _incident_row(row)


def _incident_row(row: Any) -> IncidentRow:
    i, service, title, state, opened, acked, acked_by, mitigated, resolved = row
    return IncidentRow(
        i, service, title, state, utc(opened), utc(acked), acked_by, utc(mitigated), utc(resolved)
    )


def events(db: Db, incident_id: int) -> list[Event]:
    reader = as_reader(db)
    columns = _EVENT_COLUMNS.format(data=json_text(reader, "data"))
    sql = f"SELECT {columns} FROM timeline_events WHERE incident_id = :id"
    # In id order (the chain's index gives it), then a stable sort by time: the order of
    # ORDER BY at, id without the database sorting every row in a temporary tree.
    rows = list(reader.rows(f"{sql} ORDER BY id", {"id": incident_id}, stream=True))
    try:
        rows.sort(key=itemgetter(0))
    except TypeError:  # times stored in mixed types: let the database order them
        rows = list(reader.rows(f"{sql} ORDER BY at, id", {"id": incident_id}, stream=True))
    return [Event(*row) for row in rows]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def rollbacks(db: Db, incident_id: int) -> list[RollbackInfo]:
    reader = as_reader(db)
    rows = list(
        reader.rows(
            "SELECT id, strategy, state, requested_by, environment, reason, drill, automatic, "
            "from_revision, to_revision, from_image, to_image, created_at, finished_at, "
            "CAST(plan AS TEXT), error FROM rollbacks WHERE incident_id = :id ORDER BY id",
            {"id": incident_id},
        )
    )
    ids = [r[0] for r in rows]
    approvals: dict[int, list[ApprovalInfo]] = {i: [] for i in ids}
    if ids:
        where, params = in_list("rb", ids)
        for rollback_id, actor, decision, at, reason in reader.rows(
            "SELECT rollback_id, actor, decision, at, reason FROM approvals "
            f"WHERE rollback_id IN {where} ORDER BY at, id",
            params,
        ):
            approvals[rollback_id].append(ApprovalInfo(actor, decision, utc(at), reason))
    out = []
    for r in rows:
        (rid, strategy, state, requested_by, environment, reason, drill, automatic) = r[:8]
        from_rev, to_rev, from_image, to_image, created, finished, plan, error = r[8:]
        out.append(
            RollbackInfo(
                id=rid,
                strategy=strategy,
                state=state,
                requested_by=requested_by,
                environment=environment,
                reason=reason or "",
                drill=bool(drill),
                automatic=bool(automatic),
                from_revision=from_rev,
                to_revision=to_rev,
                from_image=from_image,
                to_image=to_image,
                created_at=utc(created),
                finished_at=utc(finished),
                changes=tuple(str(c) for c in (_json(plan) or {}).get("changes") or ()),
                error=error,
                approvals=tuple(approvals[rid]),
            )
        )
    return out


def alerts(db: Db, incident_id: int) -> list[AlertInfo]:
    rows = as_reader(db).rows(
        "SELECT alertname, severity, first_seen, resolved_at, status FROM alert_groups "
        "WHERE incident_id = :id ORDER BY first_seen",
        {"id": incident_id},
    )
    return [AlertInfo(n, sev, utc(first), utc(res), st) for n, sev, first, res, st in rows]


def load(
    db: Db,
    incident_id: int,
    *,
    names: Names | None = None,
    context: Context | None = None,
) -> Postmortem | None:
    db = as_reader(db)
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
    db = as_reader(db)
    where: list[str] = ["1 = 1"]
    params: dict[str, Any] = {"limit": limit}
    if service is not None:
        where.append("incidents.service = :service")
        params["service"] = service
    if since is not None:
        where.append("incidents.opened_at >= :since")
        params["since"] = timestamp_param(db, _as_datetime(since))
    if states is not None:
        in_states, state_params = in_list("state", states)
        where.append(f"incidents.state IN {in_states}")
        params.update(state_params)
    sql = (
        f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE {' AND '.join(where)} "
        "ORDER BY incidents.opened_at DESC, incidents.id DESC LIMIT :limit"
    )
    found = [_incident_row(row) for row in db.rows(sql, params)]
    if not found:
        return []
    ids = [i.id for i in found]
    per: dict[int, list[Event]] = {i: [] for i in [0, *ids]}
    in_ids, params = in_list("inc", ids)
    in_kinds, kind_params = in_list("kind", _LIST_KINDS)
    not_people, people_params = in_list("actor", _NOT_PEOPLE)
    rows = db.rows(
        f"SELECT incident_id, {_EVENT_COLUMNS.format(data=json_text(db, 'data'))} "
        "FROM timeline_events "
        f"WHERE incident_id IN {in_ids} AND (kind IN {in_kinds} "
        f"OR (actor NOT IN {not_people} AND kind NOT LIKE 'alert.%')) ORDER BY at, id",
        {**params, **kind_params, **people_params},
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
    from datetime import time

    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time(0), tzinfo=UTC)


def thread_of(db: Db, incident_id: int, channel: str) -> str | None:
    """The incident's thread in ``channel``: its first alert group's message there, else
    the first of its rollbacks' messages there."""
    reader = as_reader(db)
    params = {"id": incident_id, "channel": channel}
    found = next(
        reader.rows(
            "SELECT message_ts FROM alert_groups WHERE incident_id = :id "
            "AND channel = :channel AND message_ts IS NOT NULL ORDER BY first_seen, id LIMIT 1",
            params,
        ),
        None,
    )
    if found and found[0]:
        return str(found[0])
    row = next(
        reader.rows(
            "SELECT thread_ts, message_ts FROM rollbacks WHERE incident_id = :id "
            "AND channel = :channel ORDER BY id LIMIT 1",
            params,
        ),
        None,
    )
    ts = None if row is None else (row[0] or row[1])
    return None if ts is None else str(ts)
