"""Statements sent on the driver connection fail as SQLAlchemy's do and spoil nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import exc, text

from rollback_bot.storage.engine import make_engine
from rollback_bot.storage.models import Base
from rollback_bot.storage.repositories.idempotency import claim_alone
from rollback_bot.storage.repositories.rollbacks import read_rollback


def test_driver_errors_are_sqlalchemy_errors_and_the_pool_stays_usable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db", pool_size=1, max_overflow=0)
    with pytest.raises(exc.OperationalError, match="no such table: rollbacks"):
        read_rollback(engine, id=1)
    with pytest.raises(exc.OperationalError, match="no such table: idempotency_keys"):
        claim_alone(engine, key="slack:T1")

    Base.metadata.create_all(engine)  # the one pooled connection works again
    assert read_rollback(engine, id=1) is None
    assert claim_alone(engine, key="slack:T1") is True
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM idempotency_keys")).scalar() == 1
