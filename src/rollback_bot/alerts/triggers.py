"""Trigger rules: when an alert (or a polled metric) should lead to a rollback.

A rule compares one number with a threshold, or simply waits for a named
alert. What happens when it holds depends on its severity: ``critical`` starts
an automatic rollback behind a countdown a human can cancel, ``warning`` only
suggests a rollback. Two brakes keep automation from making an incident
worse: a per-rule cooldown, and a per-service cap on automatic rollbacks in a
time window (``AutomationLimits``); a second automatic rollback right after
the first usually means the first did not help and a person should decide.
The rules themselves are catalog configuration (``rollback_bot.catalog.triggers``);
this module is what they mean for an alert.

Everything here is pure: the time is passed in and past firings come from a
``TriggerHistory`` the caller provides, so decisions are reproducible in tests
and explainable afterwards. ``evaluate`` returns one decision per rule,
including the skipped ones with their reason, so "why did nothing happen?"
always has an answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from rollback_bot.alerts.model import Alert, label_fingerprint
from rollback_bot.catalog.operators import CompareOp, compare, symbol
from rollback_bot.catalog.triggers import VALUE_METRIC, AutomationLimits, TriggerRule

Action = Literal["countdown", "suggest", "skip"]


def not_applicable(rule: TriggerRule, alert: Alert) -> str | None:
    """Why ``rule`` ignores ``alert``, or None when the alert concerns it."""
    if rule.query:
        if alert.source != "query" or alert.name != rule.name:
            return "not applicable: polled query rule"
        return None
    if alert.source == "query":
        return "not applicable: result of another rule's query"
    if rule.alert and alert.name != rule.alert:
        return f"not applicable: alert {alert.name!r} is not {rule.alert!r}"
    if rule.matcher is not None and not rule.matcher.matches(alert.labels):
        return f"not applicable: labels do not match {rule.matcher}"
    return None


def value_of(rule: TriggerRule, alert: Alert) -> float | None:
    """The number ``rule`` compares, taken from ``alert``."""
    if rule.query or rule.metric in (None, VALUE_METRIC):
        return alert.value
    assert rule.metric is not None
    return alert.values.get(rule.metric)


class TriggerHistory(Protocol):
    """Past firings of one service's rules (scoped to that service)."""

    def last_fired(self, rule: str) -> datetime | None: ...

    def automatic_since(self, since: datetime) -> int: ...


@dataclass
class MemoryHistory:
    """An in-memory ``TriggerHistory`` (tests, the demo, single-process use)."""

    fired: dict[str, datetime] = field(default_factory=dict)
    automatic: list[datetime] = field(default_factory=list)

    def last_fired(self, rule: str) -> datetime | None:
        return self.fired.get(rule)

    def automatic_since(self, since: datetime) -> int:
        return sum(1 for at in self.automatic if at > since)

    def record_fired(self, rule: str, *, at: datetime) -> None:
        self.fired[rule] = at

    def record_automatic(self, *, at: datetime) -> None:
        self.automatic.append(at)

    def record(self, decisions: Iterable[TriggerDecision], *, now: datetime) -> None:
        """Remember what ``evaluate`` decided; a countdown counts as automatic.

        Callers that only count rollbacks which actually ran (countdown not
        cancelled) use ``record_fired`` and ``record_automatic`` instead.
        """
        for decision in decisions:
            if decision.action == "skip":
                continue
            self.record_fired(decision.rule.name, at=now)
            if decision.action == "countdown":
                self.record_automatic(at=now)


@dataclass(frozen=True)
class TriggerDecision:
    rule: TriggerRule
    action: Action
    reason: str
    value: float | None = None

    @property
    def acts(self) -> bool:
        return self.action != "skip"


def evaluate(
    rules: Sequence[TriggerRule],
    alert: Alert,
    *,
    now: datetime,
    history: TriggerHistory,
    limits: AutomationLimits | None = None,
) -> list[TriggerDecision]:
    """One decision per rule, in rule order.

    Countdowns granted earlier in the same call count toward the cap, so one
    alert matching two critical rules cannot exceed it.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    limits = limits or AutomationLimits()
    decisions: list[TriggerDecision] = []
    granted = 0
    for rule in rules:
        decision = _decide(rule, alert, now=now, history=history, limits=limits, granted=granted)
        if decision.action == "countdown":
            granted += 1
        decisions.append(decision)
    return decisions


def _decide(
    rule: TriggerRule,
    alert: Alert,
    *,
    now: datetime,
    history: TriggerHistory,
    limits: AutomationLimits,
    granted: int,
) -> TriggerDecision:
    def skip(reason: str, value: float | None = None) -> TriggerDecision:
        return TriggerDecision(rule=rule, action="skip", reason=reason, value=value)

    unrelated = not_applicable(rule, alert)
    if unrelated:
        return skip(unrelated)
    if not alert.firing:
        return skip("alert resolved")
    value = value_of(rule, alert)
    if rule.op is not None and rule.threshold is not None:
        held = _held(rule.op, rule.threshold, value, rule.metric or VALUE_METRIC)
        if held is not None:
            return skip(held, value)
    last = history.last_fired(rule.name)
    if last is not None:
        until = last + timedelta(seconds=rule.cooldown_seconds)
        if now < until:
            return skip(f"cooldown until {until.isoformat()}", value)
    if rule.severity == "warning":
        return TriggerDecision(rule, "suggest", f"warning: {_observed(rule, value)}", value)
    used = history.automatic_since(now - timedelta(seconds=limits.window_seconds)) + granted
    if used >= limits.max_automatic:
        return skip(
            f"automatic rollback cap reached {used}/{limits.max_automatic} "
            f"in {limits.window_seconds:g}s window",
            value,
        )
    return TriggerDecision(rule, "countdown", f"critical: {_observed(rule, value)}", value)


def _held(op: CompareOp, threshold: float, value: float | None, metric: str) -> str | None:
    """None when the comparison holds, else why it does not."""
    if value is None:
        return f"no value for {metric!r} in the alert"
    if math.isnan(value):
        return f"{metric} is NaN"
    if not compare(op, value, threshold):
        return f"{metric} {value:g} is not {symbol(op)} {threshold:g}"
    return None


def _observed(rule: TriggerRule, value: float | None) -> str:
    shown = f" (observed {value:g})" if value is not None else ""
    return f"{rule.name}: {rule.condition}{shown}"


def alert_from_query(
    rule: TriggerRule, value: float, *, now: datetime, service: str | None = None
) -> Alert:
    """The alert a polled query rule's result is evaluated as."""
    if not rule.query:
        raise ValueError(f"rule {rule.name!r} has no query")
    labels = {"alertname": rule.name, "rule": rule.name}
    if service:
        labels["service"] = service
    return Alert(
        source="query",
        fingerprint=label_fingerprint(labels),
        name=rule.name,
        status="firing",
        severity=rule.severity,
        labels=labels,
        annotations={"query": rule.query},
        starts_at=now,
        value=value,
        values={VALUE_METRIC: value},
        service_hint=service,
    )


__all__ = [
    "Action",
    "MemoryHistory",
    "TriggerDecision",
    "TriggerHistory",
    "alert_from_query",
    "evaluate",
    "not_applicable",
    "value_of",
]
