"""Rollbacks: one active per service, optimistic locking, approvals once per person."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect

from rollback_bot.storage import db
from rollback_bot.storage.errors import ActiveRollbackExists, ConcurrentUpdate, DuplicateApproval
from rollback_bot.storage.models import Rollback
from rollback_bot.storage.repositories.rollbacks import read_rollback
from tests.storage.builders import T0, at, new_rollback, rollback_fields
from tests.storage.concurrency import race


def _add(uow: db.UnitOfWorkFactory, **overrides: object) -> Rollback:
    with uow() as u:
        rollback = u.rollbacks.add(**rollback_fields(**overrides))
        u.commit()
    return rollback


def test_second_active_rollback_is_refused_naming_the_first(uow: db.UnitOfWorkFactory) -> None:
    first = _add(uow)
    with uow() as u:
        with pytest.raises(ActiveRollbackExists) as refused:
            u.rollbacks.add(rollback=new_rollback(requested_by="U0CAROL"))
        assert refused.value.service == "checkout"
        assert refused.value.existing_id == first.id
        # the transaction is still usable after the refusal
        u.timeline.append(
            at=T0, actor="U0CAROL", kind="rollback.refused", summary="busy", service="checkout"
        )
        u.rollbacks.add(**rollback_fields(service="payments"))
        u.commit()
    with uow() as u:
        assert u.rollbacks.active_for_service(service="payments") is not None
        kinds = [e.kind for e in u.timeline.list_for_service(service="checkout")]
        assert kinds == ["rollback.refused"]


def test_finished_rollback_frees_the_service(uow: db.UnitOfWorkFactory) -> None:
    first = _add(uow)
    with uow() as u:
        loaded = u.rollbacks.get(id=first.id)
        assert loaded is not None
        loaded.state = "done"
        u.commit()
    second = _add(uow)
    with uow() as u:
        active = u.rollbacks.active_for_service(service="checkout")
        assert active is not None and active.id == second.id
        assert [r.id for r in u.rollbacks.list_by_state(states=["done"])] == [first.id]


def test_racing_requests_yield_exactly_one_rollback(uow: db.UnitOfWorkFactory) -> None:
    def request(i: int) -> int:
        with uow() as u:
            rollback = u.rollbacks.add(**rollback_fields(requested_by=f"U{i}"))
            u.commit()
            return rollback.id

    outcomes = race(request)
    winners = [o for o in outcomes if isinstance(o, int)]
    assert len(winners) == 1, outcomes
    refusals = [o for o in outcomes if isinstance(o, ActiveRollbackExists)]
    assert len(refusals) == len(outcomes) - 1, outcomes
    assert {r.existing_id for r in refusals} <= {winners[0], None}


def test_stale_transition_loses(uow: db.UnitOfWorkFactory) -> None:
    rollback_id = _add(uow).id
    with uow() as slow:
        stale = slow.rollbacks.get(id=rollback_id)
        assert stale is not None
        slow.session.commit()  # keep the loaded object, release the transaction

        with uow() as fast:
            fresh = fast.rollbacks.get(id=rollback_id)
            assert fresh is not None
            fresh.state = "denied"
            fast.commit()

        stale.state = "approved"
        with pytest.raises(ConcurrentUpdate):
            slow.commit()
    with uow() as u:
        loaded = u.rollbacks.get(id=rollback_id)
        assert loaded is not None and loaded.state == "denied" and loaded.version == 2


def test_concurrent_transitions_only_one_wins(uow: db.UnitOfWorkFactory) -> None:
    """Both transactions load version 1 before either writes (possible on PostgreSQL)."""
    if db.is_sqlite(uow.engine):
        pytest.skip("SQLite serialises writing units of work; see test_stale_transition_loses")
    rollback_id = _add(uow).id
    loaded = threading.Barrier(2, timeout=30)

    def transition(i: int) -> str:
        with uow() as u:
            rollback = u.rollbacks.get(id=rollback_id)
            assert rollback is not None
            loaded.wait()
            rollback.state = ["approved", "denied"][i]
            u.commit()
            return rollback.state

    outcomes = race(transition, workers=2)
    assert sum(isinstance(o, str) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, ConcurrentUpdate) for o in outcomes) == 1, outcomes


def test_queries(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        incident = u.incidents.add(service="checkout", title="t", opened_at=T0)
        a = u.rollbacks.add(**rollback_fields(incident_id=incident.id, state="aborted"))
        b = u.rollbacks.add(**rollback_fields(incident_id=incident.id, state="executing"))
        c = u.rollbacks.add(**rollback_fields(service="payments", state="paused"))
        u.commit()
    with uow() as u:
        assert [r.id for r in u.rollbacks.list_for_incident(incident_id=incident.id)] == [
            a.id,
            b.id,
        ]
        states = {r.state for r in u.rollbacks.list_by_state(states=["executing", "paused"])}
        assert states == {"executing", "paused"}
        assert [r.id for r in u.rollbacks.list(limit=2)] == [c.id, b.id]


def test_plan_mutations_are_persisted(uow: db.UnitOfWorkFactory) -> None:
    rollback_id = _add(uow).id
    with uow() as u:
        loaded = u.rollbacks.get(id=rollback_id)
        assert loaded is not None
        loaded.plan["steps"] = [50, 20, 5, 0]
        u.commit()
    with uow() as u:
        loaded = u.rollbacks.get(id=rollback_id)
        assert loaded is not None
        assert loaded.plan == {"to_revision": "41", "steps": [50, 20, 5, 0]}


def test_one_decision_per_approver(uow: db.UnitOfWorkFactory) -> None:
    rollback_id = _add(uow).id
    with uow() as u:
        u.approvals.add(rollback_id=rollback_id, actor="U0BOB", decision="approve", at=at(1))
        with pytest.raises(DuplicateApproval):
            u.approvals.add(rollback_id=rollback_id, actor="U0BOB", decision="deny", at=at(2))
        u.approvals.add(
            rollback_id=rollback_id, actor="U0DAN", decision="deny", at=at(3), reason="no"
        )
        u.commit()
    with uow() as u:
        decisions = [(a.actor, a.decision) for a in u.approvals.list_for(rollback_id=rollback_id)]
        assert decisions == [("U0BOB", "approve"), ("U0DAN", "deny")]
        assert u.approvals.decisions(rollback_id=rollback_id) == decisions


def test_a_rollback_read_on_its_own_is_the_one_a_unit_of_work_reads(
    uow: db.UnitOfWorkFactory,
) -> None:
    stored = _add(uow, plan={"steps": [{"weight": 50}]}, reason="bad deploy", drill=True)
    with uow(read_only=True) as u:
        via_session = u.rollbacks.get(id=stored.id)
    alone = read_rollback(uow.reader, id=stored.id)
    assert via_session is not None and alone is not None
    columns = [c.key for c in Rollback.__table__.columns]
    assert {c: getattr(alone, c) for c in columns} == {c: getattr(via_session, c) for c in columns}
    assert alone.created_at.tzinfo is not None and alone.plan == {"steps": [{"weight": 50}]}
    assert inspect(alone).detached  # like the session's copy once its block ended
    assert read_rollback(uow.reader, id=stored.id + 1000) is None

    # Written back through a session it is the stored row (an UPDATE, version checked).
    alone.state = "done"
    with uow() as u:
        u.session.add(alone)
        u.commit()
    with uow(read_only=True) as u:
        again = u.rollbacks.get(id=stored.id)
        assert again is not None and again.state == "done" and again.version == stored.version + 1
    with uow() as u:
        assert len(u.rollbacks.list()) == 1
