"""Incidents (one open per service), trigger firings (cooldowns) and snapshots."""

from __future__ import annotations

import pytest

from rollback_bot.storage import db
from rollback_bot.storage.errors import OpenIncidentExists
from tests.storage.builders import T0, at, rollback_fields
from tests.storage.concurrency import race


def test_one_open_incident_per_service(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        first = u.incidents.add(service="checkout", title="5xx", opened_at=T0)
        with pytest.raises(OpenIncidentExists) as refused:
            u.incidents.add(service="checkout", title="again", opened_at=at(1))
        assert refused.value.existing_id == first.id
        same, created = u.incidents.open_or_add(service="checkout", title="x", opened_at=at(2))
        assert (same.id, created) == (first.id, False)
        first.state = "resolved"
        first.resolved_at = at(3)
        second, created = u.incidents.open_or_add(service="checkout", title="y", opened_at=at(4))
        assert created and second.id != first.id
        u.commit()
    with uow() as u:
        assert [i.id for i in u.incidents.list(limit=10)] == [second.id, first.id]
        assert [i.id for i in u.incidents.list(states=["resolved"])] == [first.id]
        open_now = u.incidents.open_for_service(service="checkout")
        assert open_now is not None and open_now.id == second.id


def test_the_first_person_to_act_acknowledges_the_incident(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        incident = u.incidents.add(service="checkout", title="5xx", opened_at=T0)
        u.commit()
        incident_id = incident.id
    for i, who in enumerate(["U0ALICE", "U0BOB"], start=1):
        with uow() as u:
            u.incidents.acknowledge(id=incident_id, at=at(i), by=who)
            u.commit()
    with uow(read_only=True) as u:
        stored = u.incidents.get(id=incident_id)
        assert stored is not None
        assert (stored.acknowledged_by, stored.acknowledged_at) == ("U0ALICE", at(1))


def test_racing_alerts_open_one_incident(uow: db.UnitOfWorkFactory) -> None:
    def open_incident(i: int) -> int:
        with uow() as u:
            incident, _created = u.incidents.open_or_add(
                service="checkout", title=f"alert {i}", opened_at=at(i)
            )
            u.commit()
            return incident.id

    outcomes = race(open_incident, workers=6)
    assert len(set(outcomes)) == 1, outcomes


def test_trigger_firings_window_and_last(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        u.trigger_firings.add(service="checkout", rule="error-rate", at=at(0))
        u.trigger_firings.add(service="checkout", rule="error-rate", at=at(100))
        u.trigger_firings.add(service="checkout", rule="latency", at=at(200))
        u.trigger_firings.add(service="payments", rule="error-rate", at=at(300))
        u.commit()
    with uow() as u:
        assert u.trigger_firings.count_since(service="checkout", since=at(50)) == 2
        assert u.trigger_firings.count_since(service="checkout", since=at(0), rule="latency") == 1
        last = u.trigger_firings.last(service="checkout", rule="error-rate")
        assert last is not None and last.at == at(100)
        assert u.trigger_firings.last(service="search", rule="error-rate") is None


def test_snapshots_round_trip(uow: db.UnitOfWorkFactory) -> None:
    body = {"spec": {"template": {"spec": {"containers": [{"image": "shop/checkout:41"}]}}}}
    with uow() as u:
        rollback = u.rollbacks.add(**rollback_fields())
        u.snapshots.add(
            rollback_id=rollback.id,
            kind="deployment",
            namespace="shop",
            name="checkout",
            revision="42",
            body=body,
            taken_at=T0,
        )
        u.snapshots.add(
            rollback_id=rollback.id,
            kind="configmap",
            namespace="shop",
            name="checkout-config",
            body={"data": {"flag": "on"}},
            taken_at=at(1),
        )
        u.commit()
    with uow() as u:
        snapshots = u.snapshots.list_for(rollback_id=rollback.id)
        assert [(s.kind, s.name) for s in snapshots] == [
            ("deployment", "checkout"),
            ("configmap", "checkout-config"),
        ]
        assert snapshots[0].body == body and snapshots[0].taken_at == T0
        assert [
            s.name for s in u.snapshots.list_for(rollback_id=rollback.id, kind="configmap")
        ] == ["checkout-config"]
