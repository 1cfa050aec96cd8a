"""Trigger rules and automation limits as the catalog declares them: configuration only.

What a rule *means* for an incoming alert (does it apply, which number it compares, what
to do) is decided in ``rollback_bot.alerts.triggers``; this module only says what a valid
rule looks like, so the catalog can be validated without knowing about alerts.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from rollback_bot.catalog.matchers import Matcher, compile_matchers
from rollback_bot.catalog.operators import CompareOp, symbol

RuleSeverity = Literal["critical", "warning"]

# The metric name that refers to ``Alert.value`` (the generic ``value``, an
# Alertmanager ``value`` annotation, or a polled query's result).
VALUE_METRIC = "value"


class TriggerRule(BaseModel):
    """One rule of a service's ``triggers`` list.

    Forms:
    - ``alert`` (+ optional ``labels`` matchers): the named alert firing is enough;
    - ``metric`` + ``op`` + ``threshold``: a number of the alert (``value`` or a
      Grafana refId), optionally restricted by ``alert``/``labels``;
    - ``query`` + ``op`` + ``threshold`` (+ ``interval_seconds``): a Prometheus
      instant query polled on a schedule; its result is fed back as an alert
      built by ``rollback_bot.alerts.triggers.alert_from_query``.
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
        return f"{subject} {symbol(self.op)} {self.threshold:g}"

    @property
    def matcher(self) -> Matcher | None:
        """The compiled ``labels`` matchers; None when the rule has none."""
        return self._matcher


class AutomationLimits(BaseModel):
    """At most ``max_automatic`` automatic rollbacks per service in ``window_seconds``.

    Once reached, critical rules stop starting countdowns until older
    rollbacks leave the window. 0 turns automatic rollbacks off entirely.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_automatic: int = Field(default=1, ge=0)
    window_seconds: float = Field(default=3600, gt=0)


__all__ = ["VALUE_METRIC", "AutomationLimits", "RuleSeverity", "TriggerRule"]
