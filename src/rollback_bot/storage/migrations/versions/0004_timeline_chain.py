"""The timeline's hash chain: ``prev_hash`` and ``hash`` on every entry, existing rows sealed.

Revision ID: 0004_timeline_chain
Revises: 0003_release_verdicts
Create Date: 2026-12-01

Each entry carries the SHA-256 of its content and of the previous entry's hash on its
chain (the incident's; else the service's; else the global one), see
``rollback_bot.storage.chain``. Existing rows are sealed in id order. The append-only
triggers refuse the UPDATE that does it, so they are lifted for the backfill only, inside
this migration's transaction, and put back before it ends.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rollback_bot.storage.chain import chain_of, hash_of
from rollback_bot.storage.types import JSONType, UTCDateTime

revision = "0004_timeline_chain"
down_revision = "0003_release_verdicts"
branch_labels = None
depends_on = None

APPEND_ONLY_MESSAGE = "timeline_events is append-only"  # as in 0001_initial

_events = sa.table(
    "timeline_events",
    sa.column("id", sa.Integer),
    sa.column("incident_id", sa.Integer),
    sa.column("rollback_id", sa.Integer),
    sa.column("service", sa.String),
    sa.column("at", UTCDateTime()),
    sa.column("actor", sa.String),
    sa.column("kind", sa.String),
    sa.column("summary", sa.Text),
    sa.column("data", JSONType),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)


def upgrade() -> None:
    op.add_column("timeline_events", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("timeline_events", sa.Column("hash", sa.String(64), nullable=True))
    op.create_index("ix_timeline_events_chain_incident", "timeline_events", ["incident_id", "id"])
    op.create_index("ix_timeline_events_chain_service", "timeline_events", ["service", "id"])
    _backfill()


def _backfill() -> None:
    bind = op.get_bind()
    rows = list(bind.execute(sa.select(_events).order_by(_events.c.id)))
    if not rows:
        return
    heads: dict[object, str | None] = {}
    sealed: list[dict[str, object]] = []
    for row in rows:
        key = chain_of(row.incident_id, row.service)
        prev = heads.get(key)
        digest = hash_of(row, prev)
        heads[key] = digest
        sealed.append({"row_id": row.id, "prev_hash": prev, "hash": digest})
    update = (
        _events.update()
        .where(_events.c.id == sa.bindparam("row_id"))
        .values(prev_hash=sa.bindparam("prev_hash"), hash=sa.bindparam("hash"))
    )
    _lift_guard()
    bind.execute(update, sealed)
    _restore_guard()


def _lift_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE timeline_events DISABLE TRIGGER timeline_events_no_change")
        return
    op.execute("DROP TRIGGER IF EXISTS timeline_events_no_update")


def _restore_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE timeline_events ENABLE TRIGGER timeline_events_no_change")
        return
    op.execute(
        "CREATE TRIGGER timeline_events_no_update BEFORE UPDATE "
        f"ON timeline_events BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
    )


def downgrade() -> None:
    op.drop_index("ix_timeline_events_chain_service", table_name="timeline_events")
    op.drop_index("ix_timeline_events_chain_incident", table_name="timeline_events")
    if op.get_bind().dialect.name == "sqlite":
        # Plain ALTER TABLE (SQLite >= 3.35): a batch table rebuild would drop the triggers.
        op.execute("ALTER TABLE timeline_events DROP COLUMN hash")
        op.execute("ALTER TABLE timeline_events DROP COLUMN prev_hash")
        return
    op.drop_column("timeline_events", "hash")
    op.drop_column("timeline_events", "prev_hash")
