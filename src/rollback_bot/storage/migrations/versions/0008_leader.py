"""Slack pacing shared by every replica: the next free send slot of each channel.

Revision ID: 0008_leader
Revises: 0005_ingest
Create Date: 2026-12-01

With several replicas behind one Slack app, each replica's outbox claims a send
slot per channel in this table (one atomic UPDATE ... RETURNING), so all replicas
together stay within Slack's one message per second per channel.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_leader"
down_revision = "0005_ingest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_pacing",
        sa.Column("channel", sa.String(100), primary_key=True),
        sa.Column("next_slot", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slack_pacing")
