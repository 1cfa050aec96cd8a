"""Schema upgrades through Alembic, driven from code.

The Alembic configuration is built here rather than read from an ``alembic.ini`` so that
``rollback-bot migrate`` works the same from a checkout and from an installed wheel: the
script location points inside this package.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from rollback_bot.storage.errors import DatabaseNotMigrated

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine

# SQLAlchemy is imported where it is used: the read commands take the newest revision
# from here (head_revision) without loading it (see storage.reader).

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config whose env.py runs on ``engine`` (so SQLite pragmas apply)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (the newest by default)."""
    from alembic import command

    from rollback_bot.storage.engine import make_engine

    engine = make_engine(url)
    try:
        command.upgrade(alembic_config(engine), revision)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision`` (``"base"`` drops everything)."""
    from alembic import command

    from rollback_bot.storage.engine import make_engine

    engine = make_engine(url)
    try:
        command.downgrade(alembic_config(engine), revision)
    finally:
        engine.dispose()


_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


@cache
def head_revision() -> str | None:
    """The newest migration, read from the version files' ``revision`` lines.

    Every command checks the schema before it reads; importing Alembic and its
    script directory for that costs more than the command itself. A chain this
    reader cannot follow (branches, several heads) is left to Alembic.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found, down = _REVISION.search(source), _DOWN.search(source)
        if found is None or down is None:
            return _alembic_head()
        revisions.add(found.group(1))
        parents.update(_QUOTED.findall(down.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else _alembic_head()


def _alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated), read with one query."""
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    if len(rows) > 1:  # several heads: Alembic says which way that fails
        from alembic.runtime.migration import MigrationContext

        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    return rows[0] if rows else None


def is_up_to_date(engine: Engine) -> bool:
    """True when the database schema is exactly at the newest migration."""
    return current_revision(engine) == head_revision()


def ensure_up_to_date(engine: Engine) -> None:
    """Raise :class:`DatabaseNotMigrated` (telling the operator what to run) if behind."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise DatabaseNotMigrated(current, head)
