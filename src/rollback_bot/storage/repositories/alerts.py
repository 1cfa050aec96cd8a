"""Alert groups and the individual alerts in them, built for alert storms.

A webhook delivery carries many alerts for one group; :meth:`AlertRepository.upsert_many`
stores them in a constant number of statements (one read, one write per chunk; on
PostgreSQL one statement that does both) instead of a round trip per alert, and a
redelivered payload changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.dml import ReturningInsert

from rollback_bot.redaction import redact_tree, redact_values
from rollback_bot.storage.models import Alert, AlertGroup
from rollback_bot.storage.repositories._base import Repository, table_of

#: Rows per statement; keeps well under SQLite's bound-parameter limit.
CHUNK = 500


@dataclass(frozen=True)
class AlertRecord:
    """One alert as received, ready to store. ``payload_hash`` identifies the delivery."""

    fingerprint: str
    status: str
    starts_at: datetime
    payload_hash: str
    labels: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, Any] = field(default_factory=dict)
    ends_at: datetime | None = None
    value: float | None = None


@dataclass(frozen=True)
class UpsertResult:
    """Fingerprints by what happened to them; ``previous_status`` covers changed ones."""

    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    previous_status: dict[str, str] = field(default_factory=dict)

    @property
    def touched(self) -> bool:
        return bool(self.created or self.changed)


class AlertGroupRepository(Repository):
    def get(self, *, id: int) -> AlertGroup | None:
        return self._session.get(AlertGroup, id)

    def get_by_key(self, *, group_key: str) -> AlertGroup | None:
        stmt = select(AlertGroup).where(AlertGroup.group_key == group_key)
        return self._session.scalars(stmt).first()

    def add(self, *, group_key: str, **fields: Any) -> AlertGroup:
        group = AlertGroup(group_key=group_key, **fields)
        self._session.add(group)
        self._session.flush()
        return group

    def get_or_add(self, *, group_key: str, **fields: Any) -> tuple[AlertGroup, bool]:
        """The group for ``group_key``, created from ``fields`` if new; ``(group, created)``.

        Two deliveries racing on a new group both end up with the same row.
        """
        existing = self.get_by_key(group_key=group_key)
        if existing is not None:
            return existing, False
        group = AlertGroup(group_key=group_key, **fields)
        try:
            with self._savepoint():
                self._session.add(group)
                self._session.flush()
        except IntegrityError:
            winner = self.get_by_key(group_key=group_key)
            if winner is None:
                raise
            return winner, False
        return group, True

    def list_for_incident(self, *, incident_id: int) -> list[AlertGroup]:
        stmt = (
            select(AlertGroup)
            .where(AlertGroup.incident_id == incident_id)
            .order_by(AlertGroup.first_seen, AlertGroup.id)
        )
        return list(self._session.scalars(stmt))

    def list_firing(self, *, service: str | None = None) -> list[AlertGroup]:
        stmt = select(AlertGroup).where(AlertGroup.status == "firing")
        if service is not None:
            stmt = stmt.where(AlertGroup.service == service)
        return list(self._session.scalars(stmt.order_by(AlertGroup.id)))

    def refresh_counts(self, *, group_id: int) -> tuple[int, int]:
        """Recount the group's alerts in the database; returns ``(firing, total)``."""
        firing = (
            select(func.count())
            .where(Alert.group_id == group_id, Alert.status == "firing")
            .scalar_subquery()
        )
        total = select(func.count()).where(Alert.group_id == group_id).scalar_subquery()
        stmt = (
            update(AlertGroup)
            .where(AlertGroup.id == group_id)
            .values(firing_count=firing, total_count=total)
            .returning(AlertGroup.firing_count, AlertGroup.total_count)
            .execution_options(synchronize_session=False)
        )
        firing_count, total_count = (int(n) for n in self._session.execute(stmt).one())
        loaded = self._session.identity_map.get(identity_key(AlertGroup, group_id))
        if loaded is not None:
            set_committed_value(loaded, "firing_count", firing_count)
            set_committed_value(loaded, "total_count", total_count)
        return firing_count, total_count

    def record_delivery(
        self, *, group: AlertGroup, now: datetime, severity: str, links: dict[str, Any]
    ) -> tuple[int, int]:
        """After a delivery changed ``group``'s alerts: recount them and update the group.

        One ``UPDATE ... RETURNING``: the counts (recounted in the database, so a concurrent
        delivery to the same group cannot make them drift), the status that follows from
        them (firing while any alert fires, else resolved since ``now``), ``last_seen``,
        ``severity`` and ``links`` (redacted as the models' flush hook would). The loaded
        ``group`` gets the stored values as committed state, so the flush writes nothing
        more for it. Returns ``(firing, total)``.
        """
        firing = (
            select(func.count())
            .where(Alert.group_id == group.id, Alert.status == "firing")
            .scalar_subquery()
        )
        total = select(func.count()).where(Alert.group_id == group.id).scalar_subquery()
        stored_links = redact_values(links)
        stmt = (
            update(AlertGroup)
            .where(AlertGroup.id == group.id)
            .values(
                firing_count=firing,
                total_count=total,
                # SET expressions see the row as it was: the status follows the new count.
                status=case((firing > 0, "firing"), else_="resolved"),
                resolved_at=case((firing > 0, None), else_=now),
                last_seen=now,
                severity=severity,
                links=stored_links,
            )
            .returning(AlertGroup.firing_count, AlertGroup.total_count, AlertGroup.status)
            .execution_options(synchronize_session=False)
        )
        firing_count, total_count, status = self._session.execute(stmt).one()
        values = {
            "firing_count": int(firing_count),
            "total_count": int(total_count),
            "status": status,
            "resolved_at": None if status == "firing" else now,
            "last_seen": now,
            "severity": severity,
            "links": stored_links,
        }
        for name, value in values.items():
            set_committed_value(group, name, value)
        return values["firing_count"], values["total_count"]


class AlertRepository(Repository):
    def list_for_group(self, *, group_id: int, status: str | None = None) -> list[Alert]:
        stmt = select(Alert).where(Alert.group_id == group_id)
        if status is not None:
            stmt = stmt.where(Alert.status == status)
        return list(self._session.scalars(stmt.order_by(Alert.id)))

    def upsert_many(
        self, *, group_id: int, alerts: Sequence[AlertRecord], now: datetime
    ) -> UpsertResult:
        """Insert new alerts and update those whose payload changed, in bulk.

        Alerts whose ``payload_hash`` matches the stored one are left untouched, so a
        redelivered webhook is a no-op. Later duplicates of a fingerprint in ``alerts`` win.
        """
        result = UpsertResult()
        latest = {record.fingerprint: record for record in alerts}
        for chunk in _chunks(list(latest.values()), CHUNK):
            self._upsert_chunk(group_id, chunk, now, result)
        return result

    def _upsert_chunk(
        self, group_id: int, chunk: list[AlertRecord], now: datetime, result: UpsertResult
    ) -> None:
        # Core statements built once (SQLAlchemy's compiled cache then hits at once) and run
        # on the unit of work's connection: no ORM execution context per statement.
        connection = self._session.connection()
        if connection.dialect.name == "postgresql" and self._merge_postgresql(
            connection, group_id, chunk, now, result
        ):
            return
        fingerprints = [r.fingerprint for r in chunk]
        if connection.dialect.name == "postgresql":
            # One array parameter: the same short statement text whatever the chunk's size,
            # so the driver converts it once and the server runs it prepared.
            found = connection.exec_driver_sql(
                _STORED_PG, {"group_id": group_id, "fingerprints": fingerprints}
            )
        else:
            found = connection.execute(
                _STORED, {"group_id": group_id, "fingerprints": fingerprints}
            )
        stored = {
            fingerprint: (payload_hash, status) for fingerprint, payload_hash, status in found
        }
        rows = [
            _row(group_id, record, now)
            for record in chunk
            if _classify(record, stored.get(record.fingerprint), result)
        ]
        if rows:
            self._write(connection, rows)

    def _merge_postgresql(
        self,
        connection: Connection,
        group_id: int,
        chunk: list[AlertRecord],
        now: datetime,
        result: UpsertResult,
    ) -> bool:
        """Read the stored hashes and write what is new or changed in one statement.

        A delivery's read and write were two round trips on the request's path. Returns
        False, having done nothing, when a value has no JSON form (NaN, infinity): the
        caller then takes the two-statement path, which binds floats as floats.
        """
        try:
            document = json.dumps(
                [_json_row(_row(group_id, record, now)) for record in chunk], allow_nan=False
            )
        except ValueError:
            return False
        found = connection.exec_driver_sql(_MERGE_PG, {"rows": document})
        stored = {
            fingerprint: (payload_hash, status) for fingerprint, payload_hash, status in found
        }
        for record in chunk:
            _classify(record, stored.get(record.fingerprint), result)
        self._expire_loaded_alerts()
        return True

    def _write(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        # ON CONFLICT keeps this correct if a concurrent delivery inserted the same alert
        # between our read and this write (possible on PostgreSQL).
        if connection.dialect.name == "postgresql":
            _write_postgresql(connection, rows)
        else:
            connection.execute(_upsert_statement(connection.dialect.name), rows).close()
        self._expire_loaded_alerts()

    def _expire_loaded_alerts(self) -> None:
        # Rows changed behind the identity map's back; reload loaded alerts on next access.
        for obj in list(self._session.identity_map.values()):
            if isinstance(obj, Alert):
                self._session.expire(obj)


def _classify(
    record: AlertRecord, stored: tuple[str | None, str] | None, result: UpsertResult
) -> bool:
    """File ``record`` in ``result`` by its stored ``(hash, status)``; True if it is written."""
    if stored is None:
        result.created.append(record.fingerprint)
    elif stored[0] == record.payload_hash:
        result.unchanged.append(record.fingerprint)
        return False
    else:
        result.changed.append(record.fingerprint)
        result.previous_status[record.fingerprint] = stored[1]
    return True


_ALERTS = table_of(Alert)
_STORED = select(_ALERTS.c.fingerprint, _ALERTS.c.last_payload_hash, _ALERTS.c.status).where(
    _ALERTS.c.group_id == bindparam("group_id"),
    _ALERTS.c.fingerprint.in_(bindparam("fingerprints", expanding=True)),
)
_UPDATED_ON_CONFLICT = (
    "status",
    "labels",
    "annotations",
    "starts_at",
    "ends_at",
    "value",
    "last_payload_hash",
    "updated_at",
)


@cache
def _upsert_statement(dialect: str) -> ReturningInsert[Any]:
    """INSERT ... ON CONFLICT (group_id, fingerprint) DO UPDATE, for ``dialect``."""
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_ALERTS)
    # RETURNING makes SQLAlchemy send the rows as one multi-row INSERT ("insertmanyvalues")
    # instead of a statement per row: one round trip per chunk on PostgreSQL.
    return stmt.on_conflict_do_update(
        index_elements=["group_id", "fingerprint"],
        set_={name: stmt.excluded[name] for name in _UPDATED_ON_CONFLICT},
    ).returning(_ALERTS.c.id)


_STORED_PG = (
    "SELECT fingerprint, last_payload_hash, status FROM alerts "
    "WHERE group_id = %(group_id)s AND fingerprint = ANY(%(fingerprints)s)"
)

# PostgreSQL: the chunk's rows as one JSON parameter, unpacked by jsonb_to_recordset. A
# multi-row VALUES list has ten parameters per row and a text as long as the chunk, which
# the driver would parse again for every delivery (it caches short statements only).
_UPSERT_PG = (
    "INSERT INTO alerts (group_id, fingerprint, status, labels, annotations, starts_at, "
    "ends_at, value, last_payload_hash, updated_at) "
    "SELECT r.group_id, r.fingerprint, r.status, r.labels, r.annotations, r.starts_at, "
    "r.ends_at, r.value, r.last_payload_hash, r.updated_at "
    "FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS r(group_id integer, "
    "fingerprint varchar, status varchar, labels jsonb, annotations jsonb, "
    "starts_at timestamptz, ends_at timestamptz, value double precision, "
    "last_payload_hash varchar, updated_at timestamptz) "
    "ON CONFLICT (group_id, fingerprint) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _UPDATED_ON_CONFLICT)
)


# PostgreSQL, read and write in one statement: every sub-statement of a WITH sees the
# snapshot the statement started with, so ``prior`` holds the rows as they were before the
# INSERT (which writes only what is new or changed) and is what the statement returns.
_MERGE_PG = (
    "WITH incoming AS (SELECT * FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS r("
    "group_id integer, fingerprint varchar, status varchar, labels jsonb, annotations jsonb, "
    "starts_at timestamptz, ends_at timestamptz, value double precision, "
    "last_payload_hash varchar, updated_at timestamptz)), "
    "prior AS (SELECT a.fingerprint, a.last_payload_hash, a.status FROM alerts AS a "
    "JOIN incoming AS i ON a.group_id = i.group_id AND a.fingerprint = i.fingerprint), "
    "written AS (INSERT INTO alerts (group_id, fingerprint, status, labels, annotations, "
    "starts_at, ends_at, value, last_payload_hash, updated_at) "
    "SELECT i.group_id, i.fingerprint, i.status, i.labels, i.annotations, i.starts_at, "
    "i.ends_at, i.value, i.last_payload_hash, i.updated_at FROM incoming AS i "
    "LEFT JOIN prior AS p ON p.fingerprint = i.fingerprint "
    "WHERE p.fingerprint IS NULL OR p.last_payload_hash IS DISTINCT FROM i.last_payload_hash "
    "ON CONFLICT (group_id, fingerprint) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _UPDATED_ON_CONFLICT)
    + " RETURNING 1) "
    "SELECT fingerprint, last_payload_hash, status FROM prior"
)


def _write_postgresql(connection: Connection, rows: list[dict[str, Any]]) -> None:
    try:
        document = json.dumps([_json_row(row) for row in rows], allow_nan=False)
    except ValueError:
        # NaN or infinity (JSON has neither): the generic statement binds floats as floats.
        connection.execute(_upsert_statement("postgresql"), rows).close()
        return
    connection.exec_driver_sql(_UPSERT_PG, {"rows": document})


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "starts_at": _utc_text(row["starts_at"]),
        "ends_at": _utc_text(row["ends_at"]),
        "updated_at": _utc_text(row["updated_at"]),
    }


def _utc_text(value: datetime | None) -> str | None:
    """As ``UTCDateTime`` binds it: aware, in UTC; a naive time is refused."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise TypeError(f"naive datetime {value!r}: pass an aware UTC datetime")
    return value.astimezone(UTC).isoformat()


def _row(group_id: int, record: AlertRecord, now: datetime) -> dict[str, Any]:
    return {
        "group_id": group_id,
        "fingerprint": record.fingerprint,
        "status": record.status,
        "labels": record.labels,
        # A bulk insert passes by the models' redaction hook: redacted here, the same way.
        "annotations": redact_tree(record.annotations),
        "starts_at": record.starts_at,
        "ends_at": record.ends_at,
        "value": record.value,
        "last_payload_hash": record.payload_hash,
        "updated_at": now,
    }


def _chunks(items: list[AlertRecord], size: int) -> Iterator[list[AlertRecord]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
