"""Initial schema: incidents, alerts, rollbacks, approvals, timeline, snapshots, jobs.

Revision ID: 0001_initial
Revises:
Create Date: 2026-01-01

The timeline is append-only at the database level (triggers on both engines), and the
"one active rollback / one open incident per service" rules are partial unique indexes,
so they hold even for writers that bypass the repositories.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

# Literal copies on purpose: a migration must keep meaning what it meant when written.
ACTIVE_ROLLBACK = (
    "state IN ('requested', 'scheduled', 'approved', 'executing', 'paused', 'verifying')"
)
OPEN_INCIDENT = "state = 'open'"
APPEND_ONLY_MESSAGE = "timeline_events is append-only"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        _ts("opened_at"),
        _ts("acknowledged_at", nullable=True),
        sa.Column("acknowledged_by", sa.String(100)),
        _ts("mitigated_at", nullable=True),
        _ts("resolved_at", nullable=True),
    )
    op.create_index(
        "uq_incidents_open_service",
        "incidents",
        ["service"],
        unique=True,
        sqlite_where=sa.text(OPEN_INCIDENT),
        postgresql_where=sa.text(OPEN_INCIDENT),
    )

    op.create_table(
        "alert_groups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id")),
        sa.Column("service", sa.String(200)),
        sa.Column("group_key", sa.String(500), nullable=False, unique=True),
        sa.Column("alertname", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        _ts("first_seen"),
        _ts("last_seen"),
        _ts("resolved_at", nullable=True),
        sa.Column("channel", sa.String(100)),
        sa.Column("message_ts", sa.String(50)),
        sa.Column("labels", _json(), nullable=False),
        sa.Column("annotations", _json(), nullable=False),
        sa.Column("links", _json(), nullable=False),
        sa.Column("firing_count", sa.Integer, nullable=False),
        sa.Column("total_count", sa.Integer, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
    )
    op.create_index("ix_alert_groups_incident_id", "alert_groups", ["incident_id"])
    op.create_index("ix_alert_groups_service", "alert_groups", ["service"])

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("group_id", sa.Integer, sa.ForeignKey("alert_groups.id"), nullable=False),
        sa.Column("fingerprint", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("labels", _json(), nullable=False),
        sa.Column("annotations", _json(), nullable=False),
        _ts("starts_at"),
        _ts("ends_at", nullable=True),
        sa.Column("value", sa.Float),
        sa.Column("last_payload_hash", sa.String(64), nullable=False),
        _ts("updated_at"),
        sa.UniqueConstraint("group_id", "fingerprint", name="uq_alerts_group_fp"),
    )

    op.create_table(
        "rollbacks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id")),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("strategy", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("drill", sa.Boolean, nullable=False),
        sa.Column("automatic", sa.Boolean, nullable=False),
        sa.Column("from_revision", sa.String(100)),
        sa.Column("to_revision", sa.String(100)),
        sa.Column("from_image", sa.String(500)),
        sa.Column("to_image", sa.String(500)),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("approvals_required", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(100)),
        sa.Column("message_ts", sa.String(50)),
        sa.Column("thread_ts", sa.String(50)),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("finished_at", nullable=True),
        _ts("deadline_at", nullable=True),
        sa.Column("plan", _json(), nullable=False),
        sa.Column("result", _json()),
        sa.Column("error", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index(
        "uq_rollbacks_active_service",
        "rollbacks",
        ["service"],
        unique=True,
        sqlite_where=sa.text(ACTIVE_ROLLBACK),
        postgresql_where=sa.text(ACTIVE_ROLLBACK),
    )
    op.create_index("ix_rollbacks_state", "rollbacks", ["state"])
    op.create_index("ix_rollbacks_incident_id", "rollbacks", ["incident_id"])

    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rollback_id", sa.Integer, sa.ForeignKey("rollbacks.id"), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text),
        _ts("at"),
        sa.UniqueConstraint("rollback_id", "actor", name="uq_approvals_rollback_actor"),
    )

    op.create_table(
        "timeline_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id")),
        sa.Column("rollback_id", sa.Integer, sa.ForeignKey("rollbacks.id")),
        sa.Column("service", sa.String(200)),
        _ts("at"),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("data", _json(), nullable=False),
    )
    op.create_index("ix_timeline_events_incident_id", "timeline_events", ["incident_id"])
    op.create_index("ix_timeline_events_rollback_id", "timeline_events", ["rollback_id"])
    _create_append_only_guard()

    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rollback_id", sa.Integer, sa.ForeignKey("rollbacks.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("revision", sa.String(100)),
        sa.Column("body", _json(), nullable=False),
        _ts("taken_at"),
    )
    op.create_index("ix_snapshots_rollback_id", "snapshots", ["rollback_id"])

    op.create_table(
        "trigger_firings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        _ts("at"),
        sa.Column("rollback_id", sa.Integer, sa.ForeignKey("rollbacks.id")),
    )
    op.create_index(
        "ix_trigger_firings_service_rule_at", "trigger_firings", ["service", "rule", "at"]
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(255), primary_key=True),
        _ts("created_at"),
    )

    # Exactly the table APScheduler 3's SQLAlchemyJobStore would create for itself.
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.String(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25)),
        sa.Column("job_state", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_apscheduler_jobs_next_run_time", "apscheduler_jobs", ["next_run_time"])


def _create_append_only_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION timeline_events_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            f"RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; "
            "END $$"
        )
        op.execute(
            "CREATE TRIGGER timeline_events_no_change BEFORE UPDATE OR DELETE "
            "ON timeline_events FOR EACH ROW EXECUTE FUNCTION timeline_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER timeline_events_no_truncate BEFORE TRUNCATE "
            "ON timeline_events FOR EACH STATEMENT "
            "EXECUTE FUNCTION timeline_events_append_only()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER timeline_events_no_{verb.lower()} BEFORE {verb} "
            f"ON timeline_events BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
        )


def _drop_append_only_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS timeline_events_no_truncate ON timeline_events")
        op.execute("DROP TRIGGER IF EXISTS timeline_events_no_change ON timeline_events")
        op.execute("DROP FUNCTION IF EXISTS timeline_events_append_only()")
        return
    op.execute("DROP TRIGGER IF EXISTS timeline_events_no_update")
    op.execute("DROP TRIGGER IF EXISTS timeline_events_no_delete")


def downgrade() -> None:
    op.drop_table("apscheduler_jobs")
    op.drop_table("idempotency_keys")
    op.drop_table("trigger_firings")
    op.drop_table("snapshots")
    _drop_append_only_guard()
    op.drop_table("timeline_events")
    op.drop_table("approvals")
    op.drop_table("rollbacks")
    op.drop_table("alerts")
    op.drop_table("alert_groups")
    op.drop_table("incidents")
