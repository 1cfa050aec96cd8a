"""The one table of comparison operators: every place that accepts an ``op`` accepts the same."""

from __future__ import annotations

from typing import get_args

from rollback_bot.catalog import PrometheusCheck
from rollback_bot.catalog.operators import OPERATORS, CompareOp, compare, symbol
from rollback_bot.catalog.triggers import TriggerRule


def test_the_table_covers_exactly_the_declared_operators() -> None:
    assert set(OPERATORS) == set(get_args(CompareOp)) == {"gt", "gte", "lt", "lte", "eq"}


def test_trigger_rules_and_the_health_gate_accept_the_same_operators() -> None:
    for op in get_args(CompareOp):
        assert PrometheusCheck(url="http://p", query="q", op=op, threshold=1).op == op
        assert TriggerRule(name="r", metric="value", op=op, threshold=1).op == op


def test_symbols_are_what_people_read() -> None:
    assert [symbol(op) for op in ("gt", "gte", "lt", "lte", "eq")] == [">", ">=", "<", "<=", "=="]


def test_eq_is_tolerant_everywhere_it_is_used() -> None:
    assert compare("eq", 0.1 + 0.2, 0.3)
    rule = TriggerRule(name="r", metric="value", op="eq", threshold=0.3)
    assert rule.condition == "value == 0.3"
