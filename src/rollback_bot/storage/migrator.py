"""Schema upgrades through Alembic, driven from code.

The Alembic configuration is built here rather than read from an ``alembic.ini`` so that
``rollback-bot migrate`` works the same from a checkout and from an installed wheel: the
script location points inside this package.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from rollback_bot.storage.engine import make_engine
from rollback_bot.storage.errors import DatabaseNotMigrated

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config whose env.py runs on ``engine`` (so SQLite pragmas apply)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (the newest by default)."""
    engine = make_engine(url)
    try:
        command.upgrade(alembic_config(engine), revision)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision`` (``"base"`` drops everything)."""
    engine = make_engine(url)
    try:
        command.downgrade(alembic_config(engine), revision)
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_up_to_date(engine: Engine) -> bool:
    """True when the database schema is exactly at the newest migration."""
    return current_revision(engine) == head_revision()


def ensure_up_to_date(engine: Engine) -> None:
    """Raise :class:`DatabaseNotMigrated` (telling the operator what to run) if behind."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise DatabaseNotMigrated(current, head)
