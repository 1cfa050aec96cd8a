"""The runner's progress is stored: the step in flight and the failed attempts.

Revision ID: 0002_runner_progress
Revises: 0001_initial
Create Date: 2026-12-01

``rollbacks.applying_step`` is set before a step's first write and cleared when the
step's outcome is recorded, so a restarted runner knows from the row alone whether a
step may be half applied. ``rollbacks.attempts`` counts the failed tries of the
current job, so a retry budget is not reset by a restart.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_runner_progress"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rollbacks", sa.Column("applying_step", sa.Integer, nullable=True))
    op.add_column(
        "rollbacks", sa.Column("attempts", sa.Integer, nullable=False, server_default="0")
    )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+ and PostgreSQL): neither column is in
    # an index or constraint, and a batch rebuild of ``rollbacks`` would have to recreate
    # its partial unique index by hand.
    op.drop_column("rollbacks", "attempts")
    op.drop_column("rollbacks", "applying_step")
