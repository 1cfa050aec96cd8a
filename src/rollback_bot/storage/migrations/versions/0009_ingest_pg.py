"""PostgreSQL: a timeline chain's lock and its newest hash in one round trip.

Revision ID: 0009_ingest_pg
Revises: 0008_leader
Create Date: 2026-12-01

Every timeline entry is sealed onto its chain: the writer takes the chain's transaction
advisory lock, then reads the chain's newest hash. They were two statements (two round
trips per entry written). ``timeline_chain_head`` does both: a VOLATILE PL/pgSQL function
takes a fresh snapshot for each statement it runs (in READ COMMITTED), so its read, after
the lock is granted, sees every entry committed by the writer that held the lock before,
as the separate statement did. SQLite has nothing to create (its writers hold the database
write lock).
"""

from __future__ import annotations

from alembic import op

revision = "0009_ingest_pg"
down_revision = "0008_leader"
branch_labels = None
depends_on = None

_CREATE = """
CREATE FUNCTION timeline_chain_head(ns integer, k integer, p_incident integer, p_service text)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(ns, k);
    IF p_incident IS NOT NULL THEN
        RETURN (SELECT hash FROM timeline_events WHERE incident_id = p_incident
                ORDER BY id DESC LIMIT 1);
    ELSIF p_service IS NOT NULL THEN
        RETURN (SELECT hash FROM timeline_events
                WHERE incident_id IS NULL AND service = p_service ORDER BY id DESC LIMIT 1);
    END IF;
    RETURN (SELECT hash FROM timeline_events
            WHERE incident_id IS NULL AND service IS NULL ORDER BY id DESC LIMIT 1);
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION timeline_chain_head(integer, integer, integer, text)")
