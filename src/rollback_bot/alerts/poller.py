"""Trigger rules over Prometheus instant queries, polled on each rule's schedule.

Some failure signals never become an alert rule (an error ratio a team only
watches on a dashboard). A ``query`` trigger rule polls such a signal: when its
condition holds, the result enters the relay as a firing alert of source
``query`` (one message per rule and service, the incident, the trigger rule's
countdown or suggestion, exactly like a webhook alert); when it stops holding,
the same alert resolves, which also cancels a countdown it started. Nothing is
posted for a condition that never held.

Polling is a plain daemon thread with a due time per rule; ``poll_due`` does
one round with the time passed in, so tests drive it with an injected clock.
A Prometheus that does not answer is logged and retried at the next interval:
an unreachable metric must not look like a healthy one, nor like a failure.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rollback_bot.alerts.relay import AlertRelay
from rollback_bot.alerts.triggers import alert_from_query
from rollback_bot.catalog import Catalog, Service
from rollback_bot.catalog.operators import compare
from rollback_bot.catalog.triggers import TriggerRule
from rollback_bot.clock import Clock
from rollback_bot.integrations.prometheus import PrometheusClient, PrometheusError

log = logging.getLogger(__name__)

QUERY_TIMEOUT_SECONDS = 5.0


class QueryError(RuntimeError):
    """Prometheus gave no usable number for a rule's query."""


@dataclass(frozen=True)
class PolledRule:
    service: Service
    rule: TriggerRule
    prometheus_url: str


@dataclass(frozen=True)
class PollResult:
    service: str
    rule: str
    value: float | None
    holds: bool
    error: str | None = None


def polled_rules(catalog: Catalog, *, default_url: str | None = None) -> list[PolledRule]:
    """Every ``query`` rule with the Prometheus it asks (the service's health gate's, else
    ``default_url``); a rule with neither is skipped with a warning."""
    found: list[PolledRule] = []
    for service in catalog.services:
        for rule in service.triggers:
            if not rule.query:
                continue
            own = service.health.prometheus.url if service.health.prometheus else None
            url = own or default_url
            if not url:
                log.warning("query rule %s of %s has no Prometheus URL", rule.name, service.name)
                continue
            found.append(PolledRule(service=service, rule=rule, prometheus_url=url))
    return found


def instant_value(
    prometheus: PrometheusClient, base_url: str, query: str, *, at: datetime | None = None
) -> float:
    """The single number a polled rule compares.

    A vector must have exactly one sample: several would make the rule's meaning depend
    on which series came first, so that is an error to fix in the query (``max(...)``,
    ``sum(...)``), not something to guess. (The health gate, by contrast, fails when any
    series is bad: there every series is a witness.)
    """
    try:
        found = prometheus.instant(base_url, query, at=at)
    except PrometheusError as exc:
        raise QueryError(str(exc)) from None
    if len(found) != 1:
        raise QueryError(f"expected one sample, got {len(found)}")
    return found[0].value


class QueryPoller:
    def __init__(
        self,
        *,
        catalog: Catalog,
        relay: AlertRelay,
        clock: Clock,
        default_prometheus_url: str | None = None,
        prometheus: PrometheusClient | None = None,
    ) -> None:
        self._relay = relay
        self._clock = clock
        self._prometheus = prometheus or PrometheusClient(timeout=QUERY_TIMEOUT_SECONDS)
        self.rules = polled_rules(catalog, default_url=default_prometheus_url)
        self._due: dict[tuple[str, str], datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one round (tests call this directly) ------------------------------------
    def poll_due(self, now: datetime | None = None) -> list[PollResult]:
        """Poll every rule whose interval has passed; feed what changed to the relay."""
        now = now or self._clock.now()
        results = []
        for polled in self.rules:
            key = (polled.service.name, polled.rule.name)
            if key in self._due and now < self._due[key]:
                continue
            self._due[key] = now + timedelta(seconds=polled.rule.interval_seconds)
            results.append(self.poll(polled, now))
        return results

    def poll(self, polled: PolledRule, now: datetime) -> PollResult:
        rule, service = polled.rule, polled.service
        try:
            value = instant_value(self._prometheus, polled.prometheus_url, rule.query or "", at=now)
        except QueryError as exc:
            log.warning("query rule %s of %s: %s", rule.name, service.name, exc)
            return PollResult(service.name, rule.name, None, False, str(exc))
        assert rule.op is not None and rule.threshold is not None  # a query rule has both
        holds = not math.isnan(value) and compare(rule.op, value, rule.threshold)
        alert = alert_from_query(rule, value, now=now, service=service.name)
        if holds:
            self._relay.ingest([alert])
        elif self._relay.is_firing(alert):
            resolved = dataclasses.replace(alert, status="resolved", ends_at=now)
            self._relay.ingest([resolved])
        return PollResult(service.name, rule.name, value, holds)

    # -- the background loop -------------------------------------------------------
    def start(self, *, tick_seconds: float = 1.0) -> None:
        if not self.rules or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(tick_seconds,), name="query-poller", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=QUERY_TIMEOUT_SECONDS + 2)
            self._thread = None

    def _loop(self, tick_seconds: float) -> None:
        while not self._stop.is_set():
            try:
                self.poll_due()
            except Exception:  # one bad round must not end polling for good
                log.exception("query polling round failed")
            self._stop.wait(tick_seconds)


__all__: Sequence[str] = [
    "PollResult",
    "PolledRule",
    "QueryError",
    "QueryPoller",
    "instant_value",
    "polled_rules",
]
