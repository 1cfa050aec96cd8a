"""Idempotency keys: a Slack retry or double click is processed exactly once."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import Engine, text

from rollback_bot.storage import db
from rollback_bot.storage.housekeeping import IdempotencyPurge
from rollback_bot.storage.repositories.idempotency import claim_alone
from tests.storage.builders import T0, at
from tests.storage.concurrency import race


def _claim(uow: db.UnitOfWorkFactory, key: str, commit: bool = True) -> bool:
    with uow() as u:
        claimed = u.idempotency.claim(key=key, at=T0)
        if commit:
            u.commit()
        return claimed


def test_second_claim_of_a_key_fails(uow: db.UnitOfWorkFactory) -> None:
    assert _claim(uow, "action:U1:1700000000.1") is True
    assert _claim(uow, "action:U1:1700000000.1") is False
    assert _claim(uow, "action:U1:1700000000.2") is True


def test_claim_in_a_rolled_back_unit_of_work_is_released(uow: db.UnitOfWorkFactory) -> None:
    assert _claim(uow, "k", commit=False) is True
    assert _claim(uow, "k") is True
    assert _claim(uow, "k") is False


def test_racing_claims_have_one_winner(uow: db.UnitOfWorkFactory) -> None:
    outcomes = race(lambda _i: _claim(uow, "double-click"))
    assert sorted(outcomes, key=str) == [False] * (len(outcomes) - 1) + [True], outcomes


def test_purge_forgets_old_keys(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        u.idempotency.claim(key="old", at=T0)
        u.idempotency.claim(key="new", at=at(3600))
        assert u.idempotency.purge_before(before=at(60)) == 1
        u.commit()
    assert _claim(uow, "old") is True
    assert _claim(uow, "new") is False


def test_the_periodic_purge_forgets_keys_older_than_a_day(uow: db.UnitOfWorkFactory) -> None:
    now = at(3 * 24 * 3600)
    with uow() as u:
        u.idempotency.claim(key="two-days-old", at=now - timedelta(days=2))
        u.idempotency.claim(key="an-hour-old", at=now - timedelta(hours=1))
        u.commit()

    assert IdempotencyPurge(uow=uow, now=lambda: now).purge_once() == 1

    assert _claim(uow, "two-days-old") is True
    assert _claim(uow, "an-hour-old") is False


def test_the_purge_runs_at_start_and_stops_promptly(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        u.idempotency.claim(key="stale", at=T0)
        u.commit()
    purge = IdempotencyPurge(uow=uow, now=lambda: T0 + timedelta(days=2))

    purge.start()
    try:
        deadline = time.monotonic() + 10
        while not _claim_is_free(uow, "stale") and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        started = time.monotonic()
        purge.stop()
    assert time.monotonic() - started < 2  # not waiting out the hour
    assert _claim(uow, "stale") is True


def _claim_is_free(uow: db.UnitOfWorkFactory, key: str) -> bool:
    with uow() as u:
        return u.idempotency.claim(key=key, at=T0)  # rolled back: only a probe


def test_a_claim_in_its_own_transaction_shares_the_keys_and_has_one_winner(
    engine: Engine, uow: db.UnitOfWorkFactory
) -> None:
    assert claim_alone(engine, key="slack:T1", at=T0) is True
    assert claim_alone(engine, key="slack:T1", at=T0) is False
    assert _claim(uow, "slack:T1") is False  # the unit-of-work claim sees it
    assert _claim(uow, "slack:T2") is True
    assert claim_alone(engine, key="slack:T2") is False

    outcomes = race(lambda _i: claim_alone(engine, key="slack:retried"))
    assert sorted(outcomes, key=str) == [False] * (len(outcomes) - 1) + [True], outcomes


def test_a_claim_in_its_own_transaction_is_stored_as_any_claim_and_purged_alike(
    engine: Engine, uow: db.UnitOfWorkFactory
) -> None:
    claim_alone(engine, key="slack:old", at=T0)
    claim_alone(engine, key="slack:new", at=at(3600))
    with uow() as u:
        u.idempotency.claim(key="unit-of-work", at=T0)
        u.commit()
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT key, created_at FROM idempotency_keys")).all())
    assert stored["slack:old"] == stored["unit-of-work"]  # the same stored form of T0

    with uow() as u:
        assert u.idempotency.purge_before(before=at(60)) == 2
        u.commit()
    assert claim_alone(engine, key="slack:old", at=T0) is True
    assert claim_alone(engine, key="slack:new", at=T0) is False
