"""The rollback_bot.storage entry point: engines, migrations and units of work in one import.

Application code needs only this module::

    from rollback_bot.storage import db
    engine = db.make_engine(settings.database_url)
    db.ensure_up_to_date(engine)          # refuse to serve an un-migrated database
    make_uow = db.uow_factory(engine)
"""

from rollback_bot.storage.engine import DEFAULT_URL, is_sqlite, make_engine, normalise_url
from rollback_bot.storage.migrator import (
    current_revision,
    downgrade,
    ensure_up_to_date,
    head_revision,
    is_up_to_date,
    migrate,
)
from rollback_bot.storage.uow import UnitOfWork, UnitOfWorkFactory, uow_factory

__all__ = [
    "DEFAULT_URL",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "current_revision",
    "downgrade",
    "ensure_up_to_date",
    "head_revision",
    "is_sqlite",
    "is_up_to_date",
    "make_engine",
    "migrate",
    "normalise_url",
    "uow_factory",
]
