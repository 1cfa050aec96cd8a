"""Trigger rules: when an alert (or a polled metric) should lead to a rollback.

A rule compares one number with a threshold, or simply waits for a named
alert. What happens when it holds depends on its severity: ``critical`` starts
an automatic rollback behind a countdown a human can cancel, ``warning`` only
suggests a rollback. Two brakes keep automation from making an incident
worse: a per-rule cooldown, and a per-service cap on automatic rollbacks in a
time window (``AutomationLimits``); a second automatic rollback right after
the first usually means the first did not help and a person should decide.

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
from typing import Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from rollback_bot.alerts.matching import Matcher, compile_matchers
from rollback_bot.alerts.model import Alert, label_fingerprint

CompareOp = Literal["gt", "gte", "lt", "lte", "eq"]
RuleSeverity = Literal["critical", "warning"]
Action = Literal["countdown", "suggest", "skip"]

# ``eq`` compares with math.isclose: equal when the difference is within
# 1e-9 relative to the larger magnitude, or 1e-9 absolute (so values near zero,
# where a relative tolerance collapses, still compare equal). Metrics arrive as
# floats computed by different systems; exact equality would make ``eq`` rules
# fire or not depending on rounding. isclose is symmetric in its arguments.
EQ_REL_TOLERANCE = 1e-9
EQ_ABS_TOLERANCE = 1e-9

# The metric name that refers to ``Alert.value`` (the generic ``value``, an
# Alertmanager ``value`` annotation, or a polled query's result).
VALUE_METRIC = "value"

_SYMBOLS: dict[CompareOp, str] = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=="}


def compare(op: CompareOp, value: float, threshold: float) -> bool:
    """Whether ``value op threshold`` holds; NaN on either side never holds."""
    if math.isnan(value) or math.isnan(threshold):
        return False
    if op == "gt":
        return value > threshold
    if op == "gte":
        return value >= threshold
    if op == "lt":
        return value < threshold
    if op == "lte":
        return value <= threshold
    if op == "eq":
        return math.isclose(value, threshold, rel_tol=EQ_REL_TOLERANCE, abs_tol=EQ_ABS_TOLERANCE)
    raise ValueError(f"unknown comparison operator {op!r}")


class TriggerRule(BaseModel):
    """One rule of a service's ``triggers`` list.

    Forms:
    - ``alert`` (+ optional ``labels`` matchers): the named alert firing is enough;
    - ``metric`` + ``op`` + ``threshold``: a number of the alert (``value`` or a
      Grafana refId), optionally restricted by ``alert``/``labels``;
    - ``query`` + ``op`` + ``threshold`` (+ ``interval_seconds``): a Prometheus
      instant query polled on a schedule; its result is fed back as an alert
      built by ``alert_from_query``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    alert: str | None = None
    labels: dict[str, str] = {}
    metric: str | None = None
    query: str | None = None
    interval_seconds: float = Field(default=60, gt=0)
    op: CompareOp | None = None
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    severity: RuleSeverity = "warning"
    cooldown_seconds: float = Field(default=600, ge=0)
    countdown_seconds: float = Field(default=60, gt=0)

    _matcher: Matcher | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not (self.alert or self.metric or self.query):
            raise ValueError("needs 'alert', 'metric' or 'query'")
        if self.metric and self.query:
            raise ValueError("'metric' and 'query' exclude each other (a query is its own value)")
        if self.query and (self.alert or self.labels):
            raise ValueError("a 'query' rule is polled; it cannot also wait for 'alert'/'labels'")
        if "interval_seconds" in self.model_fields_set and not self.query:
            raise ValueError("'interval_seconds' only applies to a 'query' rule")
        numeric = bool(self.metric or self.query)
        if numeric and (self.op is None or self.threshold is None):
            raise ValueError("'op' and 'threshold' are required with 'metric' or 'query'")
        if not numeric and (self.op is not None or self.threshold is not None):
            raise ValueError("'op' and 'threshold' need 'metric' or 'query' to compare")
        if self.labels:
            try:
                self._matcher = compile_matchers(self.labels)
            except ValueError as exc:
                raise ValueError(f"labels: {exc}") from None
        return self

    @property
    def condition(self) -> str:
        """Human-readable condition, for messages and the timeline."""
        if self.op is None or self.threshold is None:
            return f"alert {self.alert} firing"
        subject = self.metric or f"query {self.query!r}"
        return f"{subject} {_SYMBOLS[self.op]} {self.threshold:g}"

    def not_applicable(self, alert: Alert) -> str | None:
        """Why this rule ignores ``alert``, or None when the alert concerns it."""
        if self.query:
            if alert.source != "query" or alert.name != self.name:
                return "not applicable: polled query rule"
            return None
        if alert.source == "query":
            return "not applicable: result of another rule's query"
        if self.alert and alert.name != self.alert:
            return f"not applicable: alert {alert.name!r} is not {self.alert!r}"
        if self._matcher is not None and not self._matcher.matches(alert.labels):
            return f"not applicable: labels do not match {self._matcher}"
        return None

    def value_of(self, alert: Alert) -> float | None:
        """The number this rule compares, taken from ``alert``."""
        if self.query or self.metric in (None, VALUE_METRIC):
            return alert.value
        assert self.metric is not None
        return alert.values.get(self.metric)


class AutomationLimits(BaseModel):
    """At most ``max_automatic`` automatic rollbacks per service in ``window_seconds``.

    Once reached, critical rules stop starting countdowns until older
    rollbacks leave the window. 0 turns automatic rollbacks off entirely.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_automatic: int = Field(default=1, ge=0)
    window_seconds: float = Field(default=3600, gt=0)


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

    unrelated = rule.not_applicable(alert)
    if unrelated:
        return skip(unrelated)
    if not alert.firing:
        return skip("alert resolved")
    value = rule.value_of(alert)
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
        return f"{metric} {value:g} is not {_SYMBOLS[op]} {threshold:g}"
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
    "EQ_ABS_TOLERANCE",
    "EQ_REL_TOLERANCE",
    "VALUE_METRIC",
    "Action",
    "AutomationLimits",
    "CompareOp",
    "MemoryHistory",
    "RuleSeverity",
    "TriggerDecision",
    "TriggerHistory",
    "TriggerRule",
    "alert_from_query",
    "compare",
    "evaluate",
]
