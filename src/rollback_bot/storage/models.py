"""The persistent shape of incidents, alerts, rollbacks and their audit trail.

These typed SQLAlchemy models are the single description of the schema that the code uses;
the Alembic migrations in ``storage/migrations`` create it (a test checks the two agree).
State columns are plain strings: the lifecycle and its rules live in
``rollback_bot.rollbacks.lifecycle``,
while the database only needs to know which rollback states count as "active" (for the
one-active-rollback-per-service index).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from rollback_bot.redaction import redact_tree, redact_values
from rollback_bot.storage.types import JSONDict, JSONType, UTCDateTime

#: Rollback states that hold the per-service slot (``rollbacks.lifecycle.ACTIVE_STATES``).
ACTIVE_ROLLBACK_STATES: tuple[str, ...] = (
    "requested",
    "scheduled",
    "approved",
    "executing",
    "paused",
    "verifying",
)

#: SQL predicate shared by the partial unique index in the models and the migration.
ACTIVE_ROLLBACK_PREDICATE = "state IN ({})".format(
    ", ".join(f"'{state}'" for state in ACTIVE_ROLLBACK_STATES)
)
OPEN_INCIDENT_PREDICATE = "state = 'open'"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONDict}


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index(
            "uq_incidents_open_service",
            "service",
            unique=True,
            sqlite_where=text(OPEN_INCIDENT_PREDICATE),
            postgresql_where=text(OPEN_INCIDENT_PREDICATE),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="open")
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    mitigated_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]


class AlertGroup(Base):
    __tablename__ = "alert_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    service: Mapped[str | None] = mapped_column(String(200), index=True)
    group_key: Mapped[str] = mapped_column(String(500), unique=True)
    alertname: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="firing")
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    channel: Mapped[str | None] = mapped_column(String(100))
    message_ts: Mapped[str | None] = mapped_column(String(50))
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    annotations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    links: Mapped[dict[str, Any]] = mapped_column(default=dict)
    firing_count: Mapped[int] = mapped_column(default=0)
    total_count: Mapped[int] = mapped_column(default=0)
    source: Mapped[str] = mapped_column(String(20))


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("group_id", "fingerprint", name="uq_alerts_group_fp"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("alert_groups.id"))
    fingerprint: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    annotations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    value: Mapped[float | None] = mapped_column(Float)
    last_payload_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Rollback(Base):
    __tablename__ = "rollbacks"
    __table_args__ = (
        Index(
            "uq_rollbacks_active_service",
            "service",
            unique=True,
            sqlite_where=text(ACTIVE_ROLLBACK_PREDICATE),
            postgresql_where=text(ACTIVE_ROLLBACK_PREDICATE),
        ),
        Index("ix_rollbacks_state", "state"),
        Index("ix_rollbacks_incident_id", "incident_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    service: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(100))
    strategy: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    from_revision: Mapped[str | None] = mapped_column(String(100))
    to_revision: Mapped[str | None] = mapped_column(String(100))
    from_image: Mapped[str | None] = mapped_column(String(500))
    to_image: Mapped[str | None] = mapped_column(String(500))
    step: Mapped[int] = mapped_column(default=0)
    # What the runner resumes from after a restart: the step whose writes were started and
    # not yet recorded (None: none in flight), and the failed attempts of the current job.
    applying_step: Mapped[int | None]
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    approvals_required: Mapped[int] = mapped_column(default=0)
    channel: Mapped[str | None] = mapped_column(String(100))
    message_ts: Mapped[str | None] = mapped_column(String(50))
    thread_ts: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]
    plan: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    # Every UPDATE carries "WHERE version = <loaded>": of two concurrent transitions only
    # the first lands, the second surfaces as rollback_bot.storage.errors.ConcurrentUpdate.
    __mapper_args__ = {"version_id_col": version}

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_ROLLBACK_STATES


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("rollback_id", "actor", name="uq_approvals_rollback_actor"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rollback_id: Mapped[int] = mapped_column(ForeignKey("rollbacks.id"))
    actor: Mapped[str] = mapped_column(String(100))
    decision: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class TimelineEvent(Base):
    """One audit entry. Append-only: database triggers reject UPDATE and DELETE; each entry
    is sealed onto its incident's hash chain (``rollback_bot.storage.chain``)."""

    __tablename__ = "timeline_events"
    __table_args__ = (
        # The chain's "last entry" lookups (``storage.chain``): newest id per incident or service.
        Index("ix_timeline_events_chain_incident", "incident_id", "id"),
        Index("ix_timeline_events_chain_service", "service", "id"),
        # A service's alert times in a window (the "Last stable" evidence) without a scan.
        Index("ix_timeline_events_service_kind_at", "service", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    rollback_id: Mapped[int | None] = mapped_column(ForeignKey("rollbacks.id"), index=True)
    service: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The hash chain (``storage.chain``): set at flush, in the writing transaction.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class Snapshot(Base):
    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    rollback_id: Mapped[int] = mapped_column(ForeignKey("rollbacks.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    namespace: Mapped[str] = mapped_column(String(253))
    name: Mapped[str] = mapped_column(String(253))
    revision: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)


class TriggerFiring(Base):
    __tablename__ = "trigger_firings"
    __table_args__ = (Index("ix_trigger_firings_service_rule_at", "service", "rule", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]
    rollback_id: Mapped[int | None] = mapped_column(ForeignKey("rollbacks.id"))


class ReleaseVerdict(Base):
    """What is known about one release of a service: bad (rolled back from) or good.

    A release is a pod template: its ``pod-template-hash`` (the ReplicaSet's identity,
    which survives being re-numbered by a rollback) and its images. The newest verdict on a
    release is what counts; older ones stay as the record of who said what and when.
    """

    __tablename__ = "release_verdicts"
    __table_args__ = (Index("ix_release_verdicts_service", "service", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    template_hash: Mapped[str | None] = mapped_column(String(100))
    images: Mapped[str] = mapped_column(Text, default="")  # comma-separated, as shown
    verdict: Mapped[str] = mapped_column(String(10))  # "bad" | "good"
    source: Mapped[str] = mapped_column(String(20))  # "rollback" | "verified" | "person"
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    rollback_id: Mapped[int | None] = mapped_column(ForeignKey("rollbacks.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SlackPacing(Base):
    """The next free send slot of a Slack channel (epoch seconds), shared by all replicas."""

    __tablename__ = "slack_pacing"

    channel: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_slot: Mapped[float] = mapped_column(Float)


# APScheduler 3's SQLAlchemyJobStore table, declared here (not mapped) so the migrations own
# it and the job store's own create_all finds it already present.
apscheduler_jobs = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", String(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


# --- nothing secret-looking is stored, except in snapshots --------------------------------
# Snapshots keep ConfigMap values whole: restoring them needs the real values (they are
# never rendered). Everything else a person or an alert wrote passes the redactor here,
# once, whichever code path wrote it. Annotations are judged by name as well as by value.
_BY_VALUE: dict[type[Base], tuple[str, ...]] = {
    Rollback: ("reason", "error", "plan", "result"),
    Approval: ("reason",),
    Incident: ("title",),
    AlertGroup: ("links",),
    TimelineEvent: ("summary",),
}
_BY_NAME: dict[type[Base], tuple[str, ...]] = {
    AlertGroup: ("annotations",),
    Alert: ("annotations",),
    TimelineEvent: ("data",),
}


@event.listens_for(Session, "before_flush")
def _redact(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.new, *session.dirty):
        for name in _BY_VALUE.get(type(obj), ()):
            value = getattr(obj, name)
            if value is not None:
                cleaned = redact_values(value)
                if cleaned != value:
                    setattr(obj, name, cleaned)
        for name in _BY_NAME.get(type(obj), ()):
            value = getattr(obj, name)
            if value:
                cleaned = redact_tree(value)
                if cleaned != value:
                    setattr(obj, name, cleaned)
