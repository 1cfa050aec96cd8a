"""Alembic environment: runs migrations on the engine handed over by the migrator."""

from __future__ import annotations

from typing import cast

from alembic import context
from sqlalchemy import Engine

from rollback_bot.storage.engine import DEFAULT_URL, make_engine


def _engine() -> Engine:
    engine = context.config.attributes.get("engine")
    if engine is not None:
        return cast(Engine, engine)
    # Plain `alembic` command line use: fall back to the configured or default URL.
    return make_engine(context.config.get_main_option("sqlalchemy.url") or DEFAULT_URL)


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        # Batch mode lets future ALTERs run on SQLite, which rebuilds tables to alter them.
        context.configure(connection=connection, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `rollback-bot migrate`")
run_migrations_online()
