"""Engine setup: URL spellings, SQLite connection settings, and timestamps that stay UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, StatementError

from rollback_bot.rollbacks.lifecycle import ACTIVE_STATES
from rollback_bot.storage import db
from rollback_bot.storage.models import ACTIVE_ROLLBACK_STATES, Incident
from tests.storage.builders import T0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u:p%40x@h/d", "postgresql+psycopg://u:p%40x@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:///rollback-bot.db", "sqlite:///rollback-bot.db"),
    ],
)
def test_normalise_url(given: str, expected: str) -> None:
    assert db.normalise_url(given) == expected


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path}/pragmas.db")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    finally:
        engine.dispose()


def test_active_states_match_the_lifecycle() -> None:
    assert set(ACTIVE_ROLLBACK_STATES) == {state.value for state in ACTIVE_STATES}


def test_foreign_keys_are_enforced(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        u.timeline.append(at=T0, actor="x", kind="k", summary="s", incident_id=999_999)
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            u.flush()


def test_datetimes_come_back_aware_utc(uow: db.UnitOfWorkFactory) -> None:
    plus_two = timezone(timedelta(hours=2))
    with uow() as u:
        incident = u.incidents.add(
            service="checkout", title="5xx", opened_at=datetime(2026, 3, 1, 14, 0, tzinfo=plus_two)
        )
        u.commit()
    with uow() as u:
        loaded = u.incidents.get(id=incident.id)
        assert loaded is not None
        assert loaded.opened_at.utcoffset() == timedelta(0)
        assert loaded.opened_at == T0  # 14:00+02:00 is 12:00 UTC


def test_naive_datetimes_are_rejected(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        u.session.add(Incident(service="checkout", title="t", opened_at=datetime(2026, 3, 1)))
        with pytest.raises(StatementError, match="naive datetime"):
            u.flush()


def test_read_only_unit_of_work_reads_committed_data(
    uow: db.UnitOfWorkFactory, engine: Engine
) -> None:
    with uow() as u:
        u.incidents.add(service="checkout", title="t", opened_at=T0)
        u.commit()
    with uow(read_only=True) as u:
        assert [i.service for i in u.incidents.list()] == ["checkout"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incidents")).scalar() == 1


def test_reader_is_not_blocked_by_an_open_writer(uow: db.UnitOfWorkFactory) -> None:
    with uow() as writer:
        writer.incidents.add(service="checkout", title="t", opened_at=T0)
        writer.flush()  # the writer now holds its write lock / row locks
        with uow(read_only=True) as reader:
            assert reader.incidents.list() == []  # sees only committed data, without waiting
        writer.commit()
    with uow(read_only=True) as reader:
        assert len(reader.incidents.list()) == 1


def test_a_reader_holds_no_transaction_on_a_server(engine: Engine) -> None:
    # At READ COMMITTED a reader's transaction bought nothing and cost a BEGIN and a
    # ROLLBACK, round trips on the alert path. An open reader holds no snapshot either.
    if db.is_sqlite(engine):
        pytest.skip("SQLite readers are deferred transactions: the lock tests cover them")
    # One pooled connection, so the writers below use the one the reader had.
    one = db.make_engine(
        engine.url.render_as_string(hide_password=False), pool_size=1, max_overflow=0
    )
    uow = db.uow_factory(one)

    def state_of(u: db.UnitOfWork) -> tuple[int, str]:
        pid = u.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as observer:
            state = observer.execute(
                text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar_one()
        return pid, str(state)

    try:
        with uow(read_only=True) as reader:
            reader.incidents.list()
            pid, state = state_of(reader)
            assert state == "idle"
        with uow() as writer:
            writer.incidents.add(service="checkout", title="t", opened_at=T0)
            writer.flush()
            assert state_of(writer) == (pid, "idle in transaction")
            writer.rollback()  # a writer's work is still discarded as a whole
        with uow(read_only=True) as reader:
            assert reader.incidents.list() == []
    finally:
        one.dispose()


def test_a_snapshot_reader_sees_one_moment(uow: db.UnitOfWorkFactory) -> None:
    # A postmortem's statements must agree: what commits after its first read is not seen.
    with uow(snapshot=True) as reader:
        assert reader.incidents.list() == []
        with uow() as writer:
            writer.incidents.add(service="checkout", title="t", opened_at=T0)
            writer.commit()
        assert reader.incidents.list() == []
    with uow(read_only=True) as reader:
        assert len(reader.incidents.list()) == 1


def test_what_a_reader_changes_is_never_stored(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        u.incidents.add(service="checkout", title="t", opened_at=T0)
        u.commit()
    with uow(read_only=True) as reader:
        (incident,) = reader.incidents.list()
        incident.title = "changed for display"
        assert len(reader.incidents.list()) == 1  # a query, which would have flushed it
    with uow(read_only=True) as reader:
        assert [i.title for i in reader.incidents.list()] == ["t"]
