"""The timeline is append-only and written atomically with the change it records."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DatabaseError

from rollback_bot.storage import db
from rollback_bot.storage.models import TimelineEvent
from tests.storage.builders import T0, at, rollback_fields


def _one_event(uow: db.UnitOfWorkFactory) -> int:
    with uow() as u:
        event = u.timeline.append(
            at=T0, actor="U0ALICE", kind="rollback.requested", summary="requested", data={"a": 1}
        )
        u.commit()
    return event.id


@pytest.mark.parametrize(
    "statement",
    ["UPDATE timeline_events SET summary = 'rewritten'", "DELETE FROM timeline_events"],
)
def test_database_refuses_to_change_history(
    uow: db.UnitOfWorkFactory, engine: Engine, statement: str
) -> None:
    _one_event(uow)
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT summary FROM timeline_events")).scalars().all() == [
            "requested"
        ]


def test_orm_edits_are_refused_too(uow: db.UnitOfWorkFactory) -> None:
    event_id = _one_event(uow)
    with uow() as u:
        event = u.session.get(TimelineEvent, event_id)
        assert event is not None
        event.summary = "rewritten"
        with pytest.raises(DatabaseError, match="append-only"):
            u.commit()
    with uow() as u:
        event = u.session.get(TimelineEvent, event_id)
        assert event is not None and event.summary == "requested"


def test_state_change_and_entry_land_together(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        rollback = u.rollbacks.add(**rollback_fields())
        u.timeline.append(
            at=T0, actor="U0ALICE", kind="rollback.requested", summary="r", rollback_id=rollback.id
        )
        u.commit()
    with uow() as u:
        loaded = u.rollbacks.get(id=rollback.id)
        assert loaded is not None
        loaded.state = "approved"
        u.timeline.append(
            at=at(5), actor="U0BOB", kind="rollback.approved", summary="a", rollback_id=loaded.id
        )
        # leaving without commit: neither the state change nor the entry may persist
    with uow() as u:
        loaded = u.rollbacks.get(id=rollback.id)
        assert loaded is not None and loaded.state == "requested"
        kinds = [e.kind for e in u.timeline.list_for_rollback(rollback_id=rollback.id)]
        assert kinds == ["rollback.requested"]


def test_lists_are_oldest_first_and_filtered(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        incident = u.incidents.add(service="checkout", title="t", opened_at=T0)
        u.timeline.append(at=at(20), actor="b", kind="k2", summary="2", incident_id=incident.id)
        u.timeline.append(at=at(10), actor="a", kind="k1", summary="1", incident_id=incident.id)
        u.timeline.append(at=at(15), actor="c", kind="other", summary="x", service="payments")
        u.commit()
    with uow() as u:
        events = u.timeline.list_for_incident(incident_id=incident.id)
        assert [e.summary for e in events] == ["1", "2"]
        assert [e.kind for e in u.timeline.list_for_service(service="payments")] == ["other"]
