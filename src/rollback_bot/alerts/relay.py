"""Alerts in, a handful of clear messages out.

A webhook delivery is stored in one transaction: alerts de-duplicated by
fingerprint (a redelivered payload changes nothing), grouped by service and
alert name (the catalog's ``group_by``), and each firing group opens or joins
its service's incident. Only after the commit does anyone hear of it: one
message per group, posted through the outbox and updated in place as alerts
join, re-fire or resolve. Trigger rules then see the alerts that changed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from rollback_bot.alerts.model import Alert
from rollback_bot.alerts.triggers import TriggerDecision, evaluate
from rollback_bot.catalog import Catalog, Service
from rollback_bot.catalog.matchers import Matcher, compile_matchers, first_match
from rollback_bot.clock import Clock
from rollback_bot.ids import format_incident_id
from rollback_bot.incidents.lifecycle import IncidentMove, transition
from rollback_bot.storage.models import AlertGroup
from rollback_bot.storage.repositories.alerts import AlertRecord
from rollback_bot.storage.uow import UnitOfWork, UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind

log = logging.getLogger(__name__)

UNMATCHED = "_unmatched"


@dataclass
class IngestSummary:
    received: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    unmatched: int = 0
    groups: list[int] = field(default_factory=list)  # groups whose message must change
    # False when the sender was not authenticated: shown, but no automation starts or stops.
    may_act: bool = True

    def as_dict(self) -> dict[str, object]:
        return {
            "received": self.received,
            "new": self.new,
            "changed": self.changed,
            "duplicates": self.unchanged,
            "unmatched": self.unmatched,
            "groups": len(self.groups),
            "automation": "evaluated" if self.may_act else "off: ALERT_WEBHOOK_TOKEN is not set",
        }


class GroupListener(Protocol):
    """Told after the commit; the Slack side and the trigger engine implement it."""

    def group_changed(self, group: AlertGroup) -> None: ...

    def group_resolved(self, group: AlertGroup) -> None: ...

    def triggered(self, service: Service, alert: Alert, decision: TriggerDecision) -> None: ...


class DbTriggerHistory:
    """Trigger history of one service, read from the database."""

    def __init__(self, uow: UnitOfWork, service: str) -> None:
        self._uow, self._service = uow, service

    def last_fired(self, rule: str) -> datetime | None:
        last = self._uow.trigger_firings.last(service=self._service, rule=rule)
        return last.at if last else None

    def automatic_since(self, since: datetime) -> int:
        return self._uow.trigger_firings.count_since(service=self._service, since=since)


MATCH_CACHE = 4096  # label combinations whose service is remembered


class AlertRelay:
    def __init__(
        self,
        *,
        catalog: Catalog,
        uow: UnitOfWorkFactory,
        clock: Clock,
        listener: GroupListener,
    ) -> None:
        self._catalog = catalog
        self._uow = uow
        self._clock = clock
        self.listener = listener
        self._matchers: list[tuple[str, Matcher]] = [
            (s.name, compile_matchers(s.match)) for s in catalog.services
        ]
        # Which service an alert belongs to depends only on the labels some matcher reads;
        # alerts of a storm share them (they differ by pod, instance...), so the answer is
        # remembered per combination of those values (bounded; matchers never change).
        self._matched_labels = tuple(
            sorted({m.label for _, matcher in self._matchers for m in matcher.matchers})
        )
        self._matched: dict[tuple[str, ...], str | None] = {}

    def service_for(self, alert: Alert) -> Service | None:
        if alert.source == "query" and alert.service_hint:
            # A polled query belongs to the service whose rule it is, whatever
            # that service's match labels say.
            return self._catalog.service(alert.service_hint)
        labels = alert.labels
        key = tuple(labels.get(label, "") for label in self._matched_labels)
        try:
            name = self._matched[key]
        except KeyError:
            name = first_match(labels, self._matchers)
            if len(self._matched) >= MATCH_CACHE:
                self._matched.clear()
            self._matched[key] = name
        return self._catalog.service(name) if name else None

    def is_firing(self, alert: Alert) -> bool:
        """Whether ``alert``'s group is firing now (so a resolution has something to resolve)."""
        key = self.group_key(self.service_for(alert), alert)
        with self._uow(read_only=True) as uow:
            group = uow.alert_groups.get_by_key(group_key=key)
            return group is not None and group.status == "firing"

    def group_key(self, service: Service | None, alert: Alert) -> str:
        parts = [service.name if service else UNMATCHED]
        for label in self._catalog.group_by:
            if label == "service":
                continue
            parts.append(alert.name if label == "alertname" else alert.labels.get(label, ""))
        return "|".join(parts)

    def ingest(self, alerts: Sequence[Alert], *, may_act: bool = True) -> IngestSummary:
        """Store, group and show ``alerts``; with ``may_act`` also run the trigger rules.

        ``may_act`` is False for alerts nobody authenticated (no
        ALERT_WEBHOOK_TOKEN): they are shown, but neither start an automatic
        rollback nor cancel a countdown by resolving.
        """
        summary = IngestSummary(received=len(alerts), may_act=may_act)
        batches: dict[str, tuple[Service | None, list[Alert]]] = {}
        for alert in alerts:
            service = self.service_for(alert)
            key = self.group_key(service, alert)
            batches.setdefault(key, (service, []))[1].append(alert)
            if service is None:
                summary.unmatched += 1
        now = self._clock.now()
        changed_groups: list[AlertGroup] = []
        resolved_groups: list[AlertGroup] = []
        fresh: dict[str, list[Alert]] = defaultdict(list)  # service -> alerts that changed
        with self._uow() as uow:
            for key, (service, batch) in batches.items():
                group, status_before, touched = self._store(uow, key, service, batch, now, summary)
                if not touched:
                    continue
                changed_groups.append(group)
                if group.status == "resolved" and status_before != "resolved":
                    resolved_groups.append(group)
                if service is not None:
                    fresh[service.name].extend(a for a in batch if a.firing)
            decisions = self._evaluate(uow, fresh, now) if may_act else []
            uow.commit()
        summary.groups = [g.id for g in changed_groups]
        for group in changed_groups:
            self.listener.group_changed(group)
        for group in resolved_groups if may_act else []:
            self.listener.group_resolved(group)
        for service, alert, decision in decisions:
            self.listener.triggered(service, alert, decision)
        return summary

    def _store(
        self,
        uow: UnitOfWork,
        key: str,
        service: Service | None,
        batch: list[Alert],
        now: datetime,
        summary: IngestSummary,
    ) -> tuple[AlertGroup, str | None, bool]:
        first = batch[0]
        group, created = uow.alert_groups.get_or_add(
            group_key=key,
            service=service.name if service else None,
            alertname=first.name,
            severity=first.severity,
            status="firing",
            first_seen=now,
            last_seen=now,
            channel=service.channel if service else self._catalog.fallback_channel,
            labels=_common_labels(batch),
            annotations=dict(first.annotations),
            links=dict(first.links),
            source=first.source,
        )
        before = None if created else group.status
        result = uow.alerts.upsert_many(
            group_id=group.id, alerts=[_record(a) for a in batch], now=now
        )
        summary.new += len(result.created)
        summary.changed += len(result.changed)
        summary.unchanged += len(result.unchanged)
        if not result.touched:
            return group, before, False
        # Counts, status, last seen, severity and links in one statement.
        firing, total = uow.alert_groups.record_delivery(
            group=group,
            now=now,
            severity=_worst(group.severity, batch),
            links={**group.links, **first.links},
        )
        if firing and service is not None and group.incident_id is None:
            incident, _ = uow.incidents.open_or_add(
                service=service.name, title=f"{first.name} on {service.name}", opened_at=now
            )
            group.incident_id = incident.id
        if firing and service is not None and group.incident_id and before == "resolved":
            previous = uow.incidents.get(id=group.incident_id)
            if previous is not None and previous.state == "resolved":
                reopened, _ = uow.incidents.open_or_add(
                    service=service.name, title=f"{first.name} on {service.name}", opened_at=now
                )
                group.incident_id = reopened.id
        uow.timeline.append(
            at=now,
            actor=first.source,
            kind=TimelineKind.alert(group.status),
            summary=_timeline_line(group, firing, total, len(result.created), service),
            incident_id=group.incident_id,
            service=group.service,
            data={
                "group": group.id,
                "new": result.created[:20],
                "changed": result.changed[:20],
                "firing": firing,
                "total": total,
            },
        )
        if not firing and group.incident_id:
            self._maybe_resolve_incident(uow, group.incident_id, now)
        return group, before, True

    def _maybe_resolve_incident(self, uow: UnitOfWork, incident_id: int, now: datetime) -> None:
        groups = uow.alert_groups.list_for_incident(incident_id=incident_id)
        if groups and all(g.status == "resolved" for g in groups):
            incident = uow.incidents.get(id=incident_id)
            if incident is not None:
                transition(
                    uow,
                    incident,
                    IncidentMove.RESOLVE,
                    at=now,
                    actor="rollback-bot",
                    why=f"every alert of {format_incident_id(incident_id)} resolved",
                )

    def _evaluate(
        self, uow: UnitOfWork, fresh: dict[str, list[Alert]], now: datetime
    ) -> list[tuple[Service, Alert, TriggerDecision]]:
        out: list[tuple[Service, Alert, TriggerDecision]] = []
        for name, alerts in fresh.items():
            service = self._catalog.service(name)
            if service is None or not service.triggers:
                continue
            history = DbTriggerHistory(uow, name)
            for alert in alerts:
                for decision in evaluate(
                    service.triggers,
                    alert,
                    now=now,
                    history=history,
                    limits=service.automation_limits,
                ):
                    if not decision.acts:
                        continue
                    uow.trigger_firings.add(service=name, rule=decision.rule.name, at=now)
                    uow.session.flush()
                    out.append((service, alert, decision))
        return out


def _record(alert: Alert) -> AlertRecord:
    return AlertRecord(
        fingerprint=alert.fingerprint,
        status=alert.status,
        starts_at=alert.starts_at,
        payload_hash=alert.payload_hash(),
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        ends_at=alert.ends_at,
        value=alert.value,
    )


def _common_labels(batch: list[Alert]) -> dict[str, str]:
    common = dict(batch[0].labels)
    for alert in batch[1:]:
        common = {k: v for k, v in common.items() if alert.labels.get(k) == v}
    return common


_SEVERITY_ORDER = {"critical": 3, "error": 2, "warning": 1, "info": 0}


def _worst(current: str, batch: list[Alert]) -> str:
    rank: Callable[[str], int] = lambda s: _SEVERITY_ORDER.get(s, 1)  # noqa: E731
    return max([current, *(a.severity for a in batch)], key=rank)


def _timeline_line(
    group: AlertGroup, firing: int, total: int, new: int, service: Service | None
) -> str:
    where = service.label if service else "no matching service"
    if firing:
        joined = f", {new} new" if new else ""
        return f"{group.alertname} firing on {where}: {firing} of {total} alerts{joined}"
    lasted = group.last_seen - group.first_seen
    return f"{group.alertname} resolved on {where} after {_short(lasted)}"


def _short(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
