"""Alert groups and bulk alert upserts: storms in few statements, redelivery changes nothing."""

from __future__ import annotations

import dataclasses
import math

from rollback_bot.storage import db
from rollback_bot.storage.repositories import AlertRecord
from tests.storage.builders import T0, at
from tests.storage.concurrency import race


def _group(u: db.UnitOfWork, key: str = '{}:{alertname="HighErrorRate"}') -> int:
    group, _created = u.alert_groups.get_or_add(
        group_key=key,
        alertname="HighErrorRate",
        severity="critical",
        service="checkout",
        source="alertmanager",
        first_seen=T0,
        last_seen=T0,
        labels={"service": "checkout"},
        links={"runbook": "https://runbooks/checkout"},
    )
    return group.id


def _record(fp: str, status: str = "firing", payload: str = "h1") -> AlertRecord:
    return AlertRecord(
        fingerprint=fp,
        status=status,
        starts_at=T0,
        payload_hash=payload,
        labels={"pod": fp},
        value=0.12,
        ends_at=at(60) if status == "resolved" else None,
    )


def test_upsert_creates_updates_and_ignores_redelivery(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        group_id = _group(u)
        first = u.alerts.upsert_many(
            group_id=group_id, alerts=[_record("a"), _record("b")], now=at(1)
        )
        assert sorted(first.created) == ["a", "b"] and first.touched
        u.commit()
    with uow() as u:
        again = u.alerts.upsert_many(
            group_id=group_id, alerts=[_record("a"), _record("b")], now=at(2)
        )
        assert not again.touched and sorted(again.unchanged) == ["a", "b"]
        resolved = u.alerts.upsert_many(
            group_id=group_id, alerts=[_record("a", "resolved", "h2")], now=at(3)
        )
        assert resolved.changed == ["a"] and resolved.previous_status == {"a": "firing"}
        assert u.alert_groups.refresh_counts(group_id=group_id) == (1, 2)
        u.commit()
    with uow() as u:
        alerts = {a.fingerprint: a for a in u.alerts.list_for_group(group_id=group_id)}
        assert alerts["a"].status == "resolved" and alerts["a"].ends_at == at(60)
        assert alerts["a"].updated_at == at(3)
        assert alerts["b"].updated_at == at(1)  # redelivery left it untouched
        group = u.alert_groups.get(id=group_id)
        assert group is not None and (group.firing_count, group.total_count) == (1, 2)
        assert [
            a.fingerprint for a in u.alerts.list_for_group(group_id=group_id, status="firing")
        ] == ["b"]


def test_storm_larger_than_one_chunk(uow: db.UnitOfWorkFactory) -> None:
    records = [_record(f"fp{i:04d}") for i in range(1200)]
    with uow() as u:
        group_id = _group(u)
        result = u.alerts.upsert_many(group_id=group_id, alerts=records, now=at(1))
        assert len(result.created) == 1200
        u.commit()
    with uow() as u:
        flipped = [_record(f"fp{i:04d}", "resolved", "h2") for i in range(0, 1200, 2)]
        result = u.alerts.upsert_many(group_id=group_id, alerts=records[1::2] + flipped, now=at(2))
        assert (len(result.created), len(result.changed), len(result.unchanged)) == (0, 600, 600)
        assert u.alert_groups.refresh_counts(group_id=group_id) == (600, 1200)
        u.commit()


def test_racing_deliveries_share_one_group(uow: db.UnitOfWorkFactory) -> None:
    def deliver(i: int) -> int:
        with uow() as u:
            group_id = _group(u, key="storm")
            u.alerts.upsert_many(group_id=group_id, alerts=[_record(f"x{i}")], now=at(i))
            u.commit()
            return group_id

    outcomes = race(deliver, workers=6)
    assert len(set(outcomes)) == 1, outcomes
    with uow() as u:
        assert u.alert_groups.refresh_counts(group_id=outcomes[0]) == (6, 6)  # type: ignore[arg-type]


def test_group_lookups(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        incident = u.incidents.add(service="checkout", title="t", opened_at=T0)
        group_id = _group(u)
        group = u.alert_groups.get(id=group_id)
        assert group is not None
        group.incident_id = incident.id
        u.commit()
    with uow() as u:
        assert u.alert_groups.get_by_key(group_key="nope") is None
        assert [g.id for g in u.alert_groups.list_for_incident(incident_id=incident.id)] == [
            group_id
        ]
        assert [g.id for g in u.alert_groups.list_firing(service="checkout")] == [group_id]
        loaded = u.alert_groups.get(id=group_id)
        assert loaded is not None and loaded.links == {"runbook": "https://runbooks/checkout"}


def test_record_delivery_recounts_and_updates_the_group_in_one_statement(
    uow: db.UnitOfWorkFactory,
) -> None:
    token = "xoxb-123-abc"
    with uow() as u:
        group_id = _group(u)
        group = u.alert_groups.get(id=group_id)
        assert group is not None
        u.alerts.upsert_many(group_id=group_id, alerts=[_record("a"), _record("b")], now=at(1))
        assert u.alert_groups.record_delivery(
            group=group, now=at(1), severity="critical", links={"runbook": f"see {token}"}
        ) == (2, 2)
        assert (group.status, group.resolved_at, group.last_seen) == ("firing", None, at(1))
        assert token not in str(group.links)  # redacted as the flush would
        assert not u.session.dirty  # nothing left for the flush to write
        u.commit()
    with uow() as u:
        group = u.alert_groups.get(id=group_id)
        assert group is not None
        u.alerts.upsert_many(
            group_id=group_id,
            alerts=[_record("a", "resolved", "h2"), _record("b", "resolved", "h2")],
            now=at(5),
        )
        assert u.alert_groups.record_delivery(
            group=group, now=at(5), severity="critical", links=group.links
        ) == (0, 2)
        assert (group.status, group.resolved_at) == ("resolved", at(5))
        u.commit()
    with uow(read_only=True) as u:
        stored = u.alert_groups.get(id=group_id)
        assert stored is not None
        assert (stored.firing_count, stored.total_count, stored.status) == (0, 2, "resolved")
        assert (stored.resolved_at, stored.last_seen) == (at(5), at(5))
        assert token not in str(stored.links)


def test_upsert_stores_values_json_cannot_carry(uow: db.UnitOfWorkFactory) -> None:
    """PostgreSQL sends a chunk as one JSON document; NaN and infinity take the other path."""
    records = [
        dataclasses.replace(_record("inf"), value=math.inf),
        dataclasses.replace(_record("nan"), value=math.nan),
        dataclasses.replace(_record("plain"), labels={"pod": "p", "quote": 'a"b\\c ü'}),
    ]
    with uow() as u:
        group_id = _group(u)
        assert sorted(u.alerts.upsert_many(group_id=group_id, alerts=records, now=at(1)).created)
        u.commit()
    with uow(read_only=True) as u:
        alerts = {a.fingerprint: a for a in u.alerts.list_for_group(group_id=group_id)}
    assert alerts["inf"].value == math.inf
    nan = alerts["nan"].value
    assert nan is None or math.isnan(nan)  # SQLite stores NaN as NULL, PostgreSQL keeps it
    assert alerts["plain"].labels == {"pod": "p", "quote": 'a"b\\c ü'}
    assert (alerts["plain"].value, alerts["plain"].starts_at) == (0.12, T0)
    assert alerts["plain"].updated_at == at(1) and alerts["plain"].ends_at is None
