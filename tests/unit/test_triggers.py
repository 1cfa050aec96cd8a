"""Trigger rules: comparisons, cooldowns and the automatic-rollback cap."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from rollback_bot.alerts.model import Alert
from rollback_bot.alerts.payloads import parse_generic, parse_grafana
from rollback_bot.alerts.triggers import MemoryHistory, alert_from_query, evaluate
from rollback_bot.catalog.operators import EQ_ABS_TOLERANCE, compare
from rollback_bot.catalog.triggers import AutomationLimits, TriggerRule
from rollback_bot.clock import FakeClock

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
any_float = st.floats(allow_nan=True, allow_infinity=True)


# --- compare ---------------------------------------------------------------------------


@given(finite | st.just(math.inf) | st.just(-math.inf), finite)
def test_gt_and_lte_are_complements(value: float, threshold: float) -> None:
    assert compare("gt", value, threshold) != compare("lte", value, threshold)


@given(finite, finite)
def test_lt_and_gte_are_complements(value: float, threshold: float) -> None:
    assert compare("lt", value, threshold) != compare("gte", value, threshold)


@given(finite, finite)
def test_gt_mirrors_lt(value: float, threshold: float) -> None:
    assert compare("gt", value, threshold) == compare("lt", threshold, value)


@given(any_float, any_float)
def test_eq_is_symmetric(a: float, b: float) -> None:
    assert compare("eq", a, b) == compare("eq", b, a)


@given(finite)
def test_eq_is_reflexive_for_numbers(value: float) -> None:
    assert compare("eq", value, value)


@given(any_float, st.sampled_from(["gt", "gte", "lt", "lte", "eq"]))
def test_nan_never_triggers(other: float, op: Any) -> None:
    assert not compare(op, math.nan, other)
    assert not compare(op, other, math.nan)


def test_eq_tolerance_examples() -> None:
    assert compare("eq", 0.1 + 0.2, 0.3)
    assert compare("eq", 0.0, EQ_ABS_TOLERANCE / 2)
    assert not compare("eq", 0.0, 1e-6)
    assert compare("eq", 1e12, 1e12 + 1)  # within 1e-9 relative
    assert not compare("eq", 1e12, 1e12 + 10_000)
    assert compare("gte", 5, 5) and compare("lte", 5, 5)
    assert not compare("gt", 5, 5) and not compare("lt", 5, 5)


def test_unknown_operator_raises() -> None:
    with pytest.raises(ValueError, match="unknown comparison operator"):
        compare("ne", 1, 2)  # type: ignore[arg-type]


# --- rule validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs 'alert', 'metric' or 'query'"),
        ({"metric": "value", "op": "gt"}, "'op' and 'threshold' are required"),
        ({"alert": "A", "threshold": 1}, "'op' and 'threshold' need 'metric' or 'query'"),
        (
            {"metric": "value", "query": "up", "op": "gt", "threshold": 1},
            "'metric' and 'query' exclude each other",
        ),
        ({"query": "up", "alert": "A", "op": "lt", "threshold": 1}, "a 'query' rule is polled"),
        ({"alert": "A", "interval_seconds": 30}, "'interval_seconds' only applies"),
        ({"alert": "A", "labels": {"env": "=~(prod"}}, "labels: env: invalid regex"),
        ({"alert": "A", "severity": "page"}, "Input should be 'critical' or 'warning'"),
        ({"metric": "value", "op": "ne", "threshold": 1}, "Input should be 'gt'"),
        ({"alert": "A", "cooldown": 5}, "Extra inputs are not permitted"),
        ({"alert": "A", "countdown_seconds": 0}, "greater than 0"),
        ({"metric": "value", "op": "gt", "threshold": "nan"}, "finite number"),
    ],
)
def test_invalid_rules_are_config_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TriggerRule.model_validate({"name": "r", **fields})


def test_rule_defaults() -> None:
    rule = TriggerRule(name="r", alert="A")
    assert (rule.severity, rule.cooldown_seconds, rule.countdown_seconds) == ("warning", 600, 60)
    query = TriggerRule(name="q", query="sum(rate(errors[5m]))", op="gt", threshold=1)
    assert query.interval_seconds == 60
    assert query.condition == "query 'sum(rate(errors[5m]))' > 1"
    assert AutomationLimits() == AutomationLimits(max_automatic=1, window_seconds=3600)


# --- evaluate -------------------------------------------------------------------------------


def generic(**fields: Any) -> Alert:
    body = {"service": "checkout", "name": "ErrorRate", **fields}
    return parse_generic(body, received_at=START)[0]


CRITICAL = TriggerRule(
    name="errors-critical",
    alert="ErrorRate",
    metric="value",
    op="gt",
    threshold=0.05,
    severity="critical",
    cooldown_seconds=300,
)
WARNING = TriggerRule(
    name="errors-warning",
    metric="value",
    op="gt",
    threshold=0.01,
    severity="warning",
    labels={"service": "checkout"},
)


def actions(decisions: list[Any]) -> list[str]:
    return [d.action for d in decisions]


def test_critical_above_threshold_starts_countdown() -> None:
    [decision] = evaluate([CRITICAL], generic(value=0.2), now=START, history=MemoryHistory())

    assert decision.action == "countdown"
    assert decision.value == 0.2
    assert decision.rule.countdown_seconds == 60
    assert "errors-critical: value > 0.05 (observed 0.2)" in decision.reason


def test_warning_only_suggests() -> None:
    decisions = evaluate(
        [CRITICAL, WARNING], generic(value=0.03), now=START, history=MemoryHistory()
    )

    assert actions(decisions) == ["skip", "suggest"]
    assert decisions[0].reason == "value 0.03 is not > 0.05"
    assert decisions[1].reason.startswith("warning: errors-warning")


def test_resolved_alert_never_triggers() -> None:
    decisions = evaluate(
        [CRITICAL, WARNING],
        generic(value=0.9, status="resolved"),
        now=START,
        history=MemoryHistory(),
    )

    assert actions(decisions) == ["skip", "skip"]
    assert {d.reason for d in decisions} == {"alert resolved"}


def test_unrelated_alert_and_labels_are_not_applicable() -> None:
    other = generic(value=0.9, name="LatencyHigh", service="cart")
    decisions = evaluate([CRITICAL, WARNING], other, now=START, history=MemoryHistory())

    assert actions(decisions) == ["skip", "skip"]
    assert decisions[0].reason == "not applicable: alert 'LatencyHigh' is not 'ErrorRate'"
    assert decisions[1].reason.startswith("not applicable: labels do not match")


def test_missing_and_nan_values_skip() -> None:
    history = MemoryHistory()
    [missing] = evaluate([CRITICAL], generic(), now=START, history=history)
    [nan] = evaluate([CRITICAL], generic(value="NaN"), now=START, history=history)

    assert missing.action == "skip" and missing.reason == "no value for 'value' in the alert"
    assert nan.action == "skip" and nan.reason == "value is NaN"


def test_alert_only_rule_fires_on_the_named_alert() -> None:
    rule = TriggerRule(name="crash", alert="ErrorRate", severity="critical")
    [decision] = evaluate([rule], generic(), now=START, history=MemoryHistory())

    assert decision.action == "countdown"
    assert "alert ErrorRate firing" in decision.reason


def test_grafana_refid_metric() -> None:
    body = {
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Recall", "service": "ranker"},
                "startsAt": "2026-03-01T11:00:00Z",
                "values": {"B": 0.71, "C": 1},
            }
        ]
    }
    [alert] = parse_grafana(body, received_at=START)
    low = TriggerRule(name="recall", metric="B", op="lt", threshold=0.8, severity="critical")
    other = TriggerRule(name="other", metric="Z", op="lt", threshold=0.8)

    decisions = evaluate([low, other], alert, now=START, history=MemoryHistory())

    assert actions(decisions) == ["countdown", "skip"]
    assert decisions[1].reason == "no value for 'Z' in the alert"


def test_cooldown_with_injected_clock() -> None:
    clock = FakeClock(START)
    history = MemoryHistory()
    limits = AutomationLimits(max_automatic=10)

    def run() -> Any:
        [decision] = evaluate(
            [CRITICAL], generic(value=0.2), now=clock.now(), history=history, limits=limits
        )
        history.record([decision], now=clock.now())
        return decision

    assert run().action == "countdown"
    clock.advance(299)
    cooled = run()
    assert cooled.action == "skip"
    assert cooled.reason == f"cooldown until {(START + timedelta(seconds=300)).isoformat()}"
    clock.advance(1)
    assert run().action == "countdown"  # cooldown is measured from the first firing


def test_cooldown_applies_to_suggestions_per_rule() -> None:
    history = MemoryHistory()
    rules = [WARNING, TriggerRule(name="other-warning", alert="ErrorRate")]
    first = evaluate(rules, generic(value=0.5), now=START, history=history)
    history.record(first, now=START)
    history.record_fired("other-warning", at=START - timedelta(hours=1))

    later = evaluate(rules, generic(value=0.5), now=START + timedelta(seconds=60), history=history)

    assert actions(first) == ["suggest", "suggest"]
    assert actions(later) == ["skip", "suggest"]


def test_cap_counts_automatic_rollbacks_in_window() -> None:
    clock = FakeClock(START)
    history = MemoryHistory()
    limits = AutomationLimits(max_automatic=2, window_seconds=3600)
    rule = CRITICAL.model_copy(update={"cooldown_seconds": 0})

    def run() -> Any:
        [decision] = evaluate(
            [rule], generic(value=0.2), now=clock.now(), history=history, limits=limits
        )
        history.record([decision], now=clock.now())
        return decision

    assert run().action == "countdown"
    clock.advance(600)
    assert run().action == "countdown"
    clock.advance(600)
    capped = run()
    assert capped.action == "skip"
    assert capped.reason == "automatic rollback cap reached 2/2 in 3600s window"
    clock.advance(2399)
    assert run().action == "skip"
    clock.advance(1)  # the first rollback is now an hour old: it has left the window
    assert run().action == "countdown"
    assert run().action == "skip"  # and the one just granted fills the cap again


def test_cap_counts_countdowns_granted_in_the_same_evaluation() -> None:
    second = CRITICAL.model_copy(update={"name": "errors-critical-2"})
    decisions = evaluate(
        [CRITICAL, second],
        generic(value=0.2),
        now=START,
        history=MemoryHistory(),
        limits=AutomationLimits(max_automatic=1),
    )

    assert actions(decisions) == ["countdown", "skip"]
    assert decisions[1].reason == "automatic rollback cap reached 1/1 in 3600s window"


def test_zero_cap_disables_automation_but_not_suggestions() -> None:
    decisions = evaluate(
        [CRITICAL, WARNING],
        generic(value=0.2),
        now=START,
        history=MemoryHistory(),
        limits=AutomationLimits(max_automatic=0),
    )

    assert actions(decisions) == ["skip", "suggest"]


def test_query_rules_only_see_their_own_results() -> None:
    query = TriggerRule(
        name="p99",
        query="histogram_quantile(0.99, x)",
        op="gte",
        threshold=2.5,
        severity="critical",
    )
    result = alert_from_query(query, 3.0, now=START, service="checkout")

    decisions = evaluate([query, WARNING, CRITICAL], result, now=START, history=MemoryHistory())
    webhook = evaluate([query], generic(value=9), now=START, history=MemoryHistory())

    assert result.labels == {"alertname": "p99", "rule": "p99", "service": "checkout"}
    assert actions(decisions) == ["countdown", "skip", "skip"]
    assert decisions[1].reason == "not applicable: result of another rule's query"
    assert webhook[0].reason == "not applicable: polled query rule"
    with pytest.raises(ValueError, match="has no query"):
        alert_from_query(CRITICAL, 1.0, now=START)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate([CRITICAL], generic(value=1), now=datetime(2026, 1, 1), history=MemoryHistory())


@given(finite, finite, st.sampled_from(["gt", "gte", "lt", "lte", "eq"]))
def test_evaluate_acts_exactly_when_compare_holds(value: float, threshold: float, op: Any) -> None:
    rule = TriggerRule(name="r", metric="value", op=op, threshold=threshold, severity="critical")
    [decision] = evaluate([rule], generic(value=value), now=START, history=MemoryHistory())

    assert (decision.action == "countdown") == compare(op, value, threshold)
