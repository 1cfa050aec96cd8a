"""Shared database fixtures: every test gets its own empty database.

- ``database_url``: URL of a fresh, empty database for this test. SQLite file under
  ``tmp_path`` by default; when ``ROLLBACK_BOT_TEST_DATABASE_URL`` names a PostgreSQL server
  (e.g. ``postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres``) a uniquely named
  database is created on it for the test and dropped afterwards.
- ``migrated_url``: the same database upgraded to the newest migration.
- ``engine``: an engine on ``migrated_url`` (disposed after the test).
- ``uow``: a unit-of-work factory on that engine: ``with uow() as u: ...; u.commit()``.

So the whole suite runs unchanged against both engines; ``.ci/run`` does both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from rollback_bot.storage import db

SERVER_URL_ENV = "ROLLBACK_BOT_TEST_DATABASE_URL"

# One session-scoped real control plane (``real_control_plane``) for every package that uses it.
pytest_plugins = ["tests.support.realk8s"]


@pytest.fixture
def database_url(tmp_path: os.PathLike[str]) -> Iterator[str]:
    server = os.environ.get(SERVER_URL_ENV)
    if not server:
        yield f"sqlite:///{tmp_path}/test.db"
        return
    yield from _postgres_database(db.normalise_url(server))


def _postgres_database(server_url: str) -> Iterator[str]:
    name = f"rbtest_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # FORCE: a test that leaked a connection must not leak the database too.
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def migrated_url(database_url: str) -> str:
    db.migrate(database_url)
    return database_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    engine = db.make_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine: Engine) -> db.UnitOfWorkFactory:
    return db.uow_factory(engine)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Tests that run the CLI call its logging setup, which puts a handler on the root
    logger bound to that test's captured stderr; once the capture closes, every later log
    line would print a "--- Logging error ---" traceback. Each test gets the logging
    configuration it started with back."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
