"""The comparison operators of the catalog, with one meaning for the whole product.

Trigger rules (``op`` + ``threshold`` of a metric or a polled query) and the health gate's
Prometheus check (``health.prometheus.op``) share this one table, so ``eq`` cannot mean one
thing when a rule decides to roll back and another when the gate decides the rollback helped.

``eq`` compares with ``math.isclose``: equal when the difference is within 1e-9 relative to
the larger magnitude, or 1e-9 absolute (so values near zero, where a relative tolerance
collapses, still compare equal). Metrics arrive as floats computed by different systems;
exact equality would make ``eq`` hold or not depending on rounding. ``isclose`` is symmetric
in its arguments. Every operator is false when either side is NaN, as in PromQL.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

CompareOp = Literal["gt", "gte", "lt", "lte", "eq"]

EQ_REL_TOLERANCE = 1e-9
EQ_ABS_TOLERANCE = 1e-9


def _close(value: float, threshold: float) -> bool:
    return math.isclose(value, threshold, rel_tol=EQ_REL_TOLERANCE, abs_tol=EQ_ABS_TOLERANCE)


@dataclass(frozen=True)
class Operator:
    symbol: str  # as people read it in messages: ">", ">=", ...
    holds: Callable[[float, float], bool]


OPERATORS: dict[CompareOp, Operator] = {
    "gt": Operator(">", operator.gt),
    "gte": Operator(">=", operator.ge),
    "lt": Operator("<", operator.lt),
    "lte": Operator("<=", operator.le),
    "eq": Operator("==", _close),
}


def _operator(op: CompareOp) -> Operator:
    found = OPERATORS.get(op)
    if found is None:
        raise ValueError(f"unknown comparison operator {op!r}")
    return found


def compare(op: CompareOp, value: float, threshold: float) -> bool:
    """Whether ``value op threshold`` holds; NaN on either side never holds."""
    holds = _operator(op).holds
    if math.isnan(value) or math.isnan(threshold):
        return False
    return holds(value, threshold)


def symbol(op: CompareOp) -> str:
    """``gt`` -> ``>``, for conditions shown to people."""
    return _operator(op).symbol


__all__ = [
    "EQ_ABS_TOLERANCE",
    "EQ_REL_TOLERANCE",
    "OPERATORS",
    "CompareOp",
    "Operator",
    "compare",
    "symbol",
]
