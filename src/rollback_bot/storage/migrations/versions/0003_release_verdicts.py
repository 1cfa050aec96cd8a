"""What the bot knows about each release: rolled back from (bad), verified or marked good.

Revision ID: 0003_release_verdicts
Revises: 0002_runner_progress
Create Date: 2026-12-08

One row per verdict on a release of a service (its pod-template hash and images), with
the incident and rollback that gave it, or the person who marked it. The newest verdict
on a release counts; the target of a rollback is chosen from this evidence only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_release_verdicts"
down_revision = "0002_runner_progress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_verdicts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("template_hash", sa.String(100), nullable=True),
        sa.Column("images", sa.Text, nullable=False),
        sa.Column("verdict", sa.String(10), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=True),
        sa.Column("rollback_id", sa.Integer, sa.ForeignKey("rollbacks.id"), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_release_verdicts_service", "release_verdicts", ["service", "at"])


def downgrade() -> None:
    op.drop_index("ix_release_verdicts_service", table_name="release_verdicts")
    op.drop_table("release_verdicts")
