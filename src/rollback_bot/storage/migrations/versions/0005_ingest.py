"""Ingest stays flat as the timeline grows: an index for a service's alert times.

Revision ID: 0005_ingest
Revises: 0004_timeline_chain
Create Date: 2026-12-01

Every alert-group message asks which revision is "last stable", which needs to
know whether an alert fired within each revision's stable window. With this
index that is one lookup per window instead of a scan of the service's whole
timeline.
"""

from __future__ import annotations

from alembic import op

revision = "0005_ingest"
down_revision = "0004_timeline_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_timeline_events_service_kind_at", "timeline_events", ["service", "kind", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_timeline_events_service_kind_at", table_name="timeline_events")
