"""Migrations own the schema: they build it from nothing, tear it down, and match the models."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import Engine, inspect

from rollback_bot.storage import db
from rollback_bot.storage.errors import DatabaseNotMigrated
from rollback_bot.storage.models import Base

TABLES = {
    "incidents",
    "alert_groups",
    "alerts",
    "rollbacks",
    "approvals",
    "timeline_events",
    "snapshots",
    "trigger_firings",
    "idempotency_keys",
    "apscheduler_jobs",
}


def test_upgrade_to_head_and_down_to_base(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        assert not db.is_up_to_date(engine)
        db.migrate(database_url)
        assert db.is_up_to_date(engine)
        assert set(inspect(engine).get_table_names()) >= TABLES

        db.downgrade(database_url, "base")
        assert not db.is_up_to_date(engine)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

        db.migrate(database_url)  # and back up again: downgrade left nothing behind
        assert db.is_up_to_date(engine)
    finally:
        engine.dispose()


def test_unmigrated_database_is_refused_with_instructions(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        with pytest.raises(DatabaseNotMigrated, match="rollback-bot migrate"):
            db.ensure_up_to_date(engine)
    finally:
        engine.dispose()


def test_models_match_migrations(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        assert compare_metadata(context, Base.metadata) == []


def test_migrated_database_satisfies_apscheduler_jobstore(engine: Engine) -> None:
    store = SQLAlchemyJobStore(engine=engine)
    store.start(MagicMock(), "default")  # runs the store's own create(checkfirst=True)
    expected = {column.name for column in store.jobs_t.columns}
    assert {c["name"] for c in inspect(engine).get_columns("apscheduler_jobs")} == expected
    assert store.get_all_jobs() == []
    assert store.get_next_run_time() is None
