"""The alert relay against a real database: de-duplication, grouping, matching,
incidents, and the trigger brakes (cooldown, cap) with an injected clock."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from rollback_bot.alerts.model import Alert
from rollback_bot.alerts.relay import AlertRelay
from rollback_bot.alerts.triggers import TriggerDecision
from rollback_bot.catalog import Catalog, Service, parse_catalog
from rollback_bot.clock import FakeClock
from rollback_bot.storage.models import AlertGroup
from rollback_bot.storage.uow import UnitOfWorkFactory

CATALOG: dict[str, Any] = {
    "fallback_channel": "C0FALLBACK",
    "services": [
        {
            "name": "checkout",
            "deployment": "checkout",
            "channel": "C0CHECKOUT",
            "match": {"service": "checkout", "env": "!=staging"},
            "policy": {"automation": True, "approvers": {"usergroups": ["S0SRE"]}},
            "triggers": [
                {"name": "errors", "metric": "value", "op": "gt", "threshold": 0.05,
                 "severity": "critical", "cooldown_seconds": 300},
                {"name": "latency", "alert": "SlowRequests", "severity": "warning",
                 "cooldown_seconds": 60},
            ],
            "automation_limits": {"max_automatic": 2, "window_seconds": 3600},
        },
        {
            "name": "search",
            "deployment": "search",
            "channel": "C0SEARCH",
            "match": {"app": "=~search-.*"},
            "policy": {"approvers": {"usergroups": ["S0SRE"]}},
        },
    ],
}  # fmt: skip


class Recorder:
    def __init__(self) -> None:
        self.changed: list[AlertGroup] = []
        self.resolved: list[AlertGroup] = []
        self.decisions: list[tuple[str, str, TriggerDecision]] = []

    def group_changed(self, group: AlertGroup) -> None:
        self.changed.append(group)

    def group_resolved(self, group: AlertGroup) -> None:
        self.resolved.append(group)

    def triggered(self, service: Service, alert: Alert, decision: TriggerDecision) -> None:
        self.decisions.append((service.name, decision.rule.name, decision))


def alert(
    fingerprint: str,
    *,
    name: str = "HighErrorRate",
    status: str = "firing",
    severity: str = "critical",
    value: float | None = None,
    **labels: str,
) -> Alert:
    return Alert(
        source="alertmanager",
        fingerprint=fingerprint,
        name=name,
        status=status,  # type: ignore[arg-type]
        severity=severity,
        labels={"alertname": name, "severity": severity, **labels},
        annotations={"summary": "5xx above 5%"},
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        value=value,
    )


@pytest.fixture
def catalog() -> Catalog:
    return parse_catalog(CATALOG)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def relay(
    catalog: Catalog, uow: UnitOfWorkFactory, clock: FakeClock, recorder: Recorder
) -> AlertRelay:
    return AlertRelay(catalog=catalog, uow=uow, clock=clock, listener=recorder)


def test_redelivery_changes_nothing(
    relay: AlertRelay, recorder: Recorder, uow: UnitOfWorkFactory
) -> None:
    batch = [alert(f"fp{i}", service="checkout", pod=f"p{i}") for i in range(5)]
    first = relay.ingest(batch)
    again = relay.ingest(batch)

    assert (first.new, first.unchanged, len(first.groups)) == (5, 0, 1)
    assert (again.new, again.changed, again.unchanged, again.groups) == (0, 0, 5, [])
    assert len(recorder.changed) == 1  # the second delivery told nobody anything
    with uow(read_only=True) as u:
        group = u.alert_groups.get(id=first.groups[0])
        assert group is not None
        assert u.alert_groups.refresh_counts(group_id=group.id) == (5, 5)
        assert len(u.timeline.list_for_incident(incident_id=group.incident_id)) == 1


def test_groups_by_service_and_alertname_and_opens_one_incident(
    relay: AlertRelay, uow: UnitOfWorkFactory
) -> None:
    summary = relay.ingest(
        [
            alert("a1", service="checkout"),
            alert("a2", service="checkout"),
            alert("b1", name="SlowRequests", severity="warning", service="checkout"),
            alert("c1", app="search-api"),
        ]
    )
    assert len(summary.groups) == 3
    with uow(read_only=True) as u:
        groups = [u.alert_groups.get(id=g) for g in summary.groups]
        by_name = {(g.service, g.alertname): g for g in groups if g is not None}
        assert set(by_name) == {
            ("checkout", "HighErrorRate"),
            ("checkout", "SlowRequests"),
            ("search", "HighErrorRate"),
        }
        checkout = [g for g in groups if g is not None and g.service == "checkout"]
        assert len({g.incident_id for g in checkout}) == 1  # both join one incident
        assert by_name[("search", "HighErrorRate")].channel == "C0SEARCH"


def test_unmatched_alerts_go_to_the_fallback_channel(
    relay: AlertRelay, uow: UnitOfWorkFactory
) -> None:
    # "env!=staging" excludes this one from checkout; nothing else matches it.
    summary = relay.ingest([alert("x1", service="checkout", env="staging")])
    assert summary.unmatched == 1
    with uow(read_only=True) as u:
        group = u.alert_groups.get(id=summary.groups[0])
        assert group is not None
        assert (group.service, group.channel, group.incident_id) == (None, "C0FALLBACK", None)


def test_resolution_closes_group_and_incident(
    relay: AlertRelay, recorder: Recorder, clock: FakeClock, uow: UnitOfWorkFactory
) -> None:
    firing = [alert("a1", service="checkout"), alert("a2", service="checkout")]
    group_id = relay.ingest(firing).groups[0]
    clock.advance(90)
    relay.ingest([dataclasses.replace(firing[0], status="resolved")])
    assert recorder.resolved == []  # one of two still firing
    clock.advance(30)
    relay.ingest([dataclasses.replace(a, status="resolved") for a in firing])

    assert [g.id for g in recorder.resolved] == [group_id]
    with uow(read_only=True) as u:
        group = u.alert_groups.get(id=group_id)
        assert group is not None and group.status == "resolved"
        assert (group.resolved_at - group.first_seen).total_seconds() == 120
        incident = u.incidents.get(id=group.incident_id)
        assert incident is not None and incident.state == "resolved"
        kinds = [e.kind for e in u.timeline.list_for_incident(incident_id=incident.id)]
    assert kinds == ["alert.firing", "alert.firing", "alert.resolved", "incident.resolved"]


def test_critical_rule_respects_cooldown_with_injected_clock(
    relay: AlertRelay, recorder: Recorder, clock: FakeClock
) -> None:
    relay.ingest([alert("v1", service="checkout", value=0.2)])
    assert [(s, r, d.action) for s, r, d in recorder.decisions] == [
        ("checkout", "errors", "countdown")
    ]
    clock.advance(299)
    relay.ingest([alert("v1", service="checkout", value=0.3)])  # changed, but cooling down
    assert len(recorder.decisions) == 1
    clock.advance(2)
    relay.ingest([alert("v1", service="checkout", value=0.4)])
    assert len(recorder.decisions) == 2


def test_value_below_threshold_and_resolved_alerts_trigger_nothing(
    relay: AlertRelay, recorder: Recorder
) -> None:
    relay.ingest([alert("v1", service="checkout", value=0.01)])
    relay.ingest([alert("v1", service="checkout", value=0.5, status="resolved")])
    assert recorder.decisions == []


def test_cap_on_automatic_rollbacks_per_window(
    relay: AlertRelay, recorder: Recorder, clock: FakeClock
) -> None:
    for i in range(4):
        relay.ingest([alert("v1", service="checkout", value=0.2 + i)])
        clock.advance(301)  # past the cooldown each time
    assert len(recorder.decisions) == 2  # max_automatic: 2 per hour
    clock.advance(3600)
    relay.ingest([alert("v1", service="checkout", value=9.0)])
    assert len(recorder.decisions) == 3


def test_warning_rule_suggests_once_per_cooldown(
    relay: AlertRelay, recorder: Recorder, clock: FakeClock
) -> None:
    slow = alert("s1", name="SlowRequests", severity="warning", service="checkout")
    relay.ingest([slow])
    relay.ingest([dataclasses.replace(slow, fingerprint="s2")])
    clock.advance(61)
    relay.ingest([dataclasses.replace(slow, fingerprint="s3")])
    assert [(r, d.action) for _, r, d in recorder.decisions] == [
        ("latency", "suggest"),
        ("latency", "suggest"),
    ]


def test_service_matching_is_remembered_per_matched_labels_only(relay: AlertRelay) -> None:
    # Labels no matcher reads (pod) share an answer; those a matcher reads decide it, and a
    # missing label reads as empty, as the matchers read it.
    cases = [
        ({"service": "checkout", "pod": "p1"}, "checkout"),
        ({"service": "checkout", "pod": "p2"}, "checkout"),
        ({"service": "checkout", "env": "staging", "pod": "p1"}, None),
        ({"service": "checkout", "env": "", "pod": "p3"}, "checkout"),
        ({"app": "search-api", "pod": "p1"}, "search"),
        ({"app": "search-api", "service": "checkout"}, "checkout"),
        ({"app": "other", "pod": "p1"}, None),
    ]
    for _ in range(2):  # the second round answers from what the first remembered
        for labels, expected in cases:
            found = relay.service_for(alert("fp", **labels))
            assert (found.name if found else None) == expected, labels
