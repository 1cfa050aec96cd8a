"""How the rollback use cases say things: past tenses, approval windows, revisions.

Pure functions over the catalog and the lifecycle, so replies and timeline summaries read
the same wherever they are written."""

from __future__ import annotations

from dataclasses import replace

from rollback_bot.catalog import Service
from rollback_bot.executors.base import Plan
from rollback_bot.rollbacks.lifecycle import Move


def with_dependents(plan: Plan, service: Service) -> Plan:
    """Services that depend on this one get a warning line in the plan (modal and message)."""
    if not service.dependents:
        return plan
    names = ", ".join(f"`{d}`" for d in service.dependents)
    line = f"Depends on {service.name}: {names}. Watch them during and after this rollback."
    return replace(plan, warnings=(*plan.warnings, line))


def ttl_text(service: Service) -> str:
    seconds = service.policy.approval_ttl_seconds
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def expired_why(service: Service) -> str:
    return (
        f"this request expired (approvals for {service.label} must come within "
        f"{ttl_text(service)}); request the rollback again"
    )


PAST_TENSE = {
    Move.APPROVE: "approved",
    Move.DENY: "denied",
    Move.PAUSE: "paused",
    Move.RESUME: "resumed",
    Move.SKIP_TO_END: "skipped to the last step of",
    Move.ABORT: "aborted",
    Move.RUN_NOW: "started",
}


def past_tense(move: Move) -> str:
    return PAST_TENSE.get(move, move.value)


def revision_str(value: int | None) -> str | None:
    return None if value is None else str(value)


def revision_text(value: int | None) -> str:
    return "?" if value is None else f"revision {value}"
