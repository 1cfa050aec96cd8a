"""Idempotency keys: a Slack retry or double click is processed exactly once."""

from __future__ import annotations

from rollback_bot.storage import db
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
