"""Small builders for storage tests: valid rows with only the interesting fields spelled out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rollback_bot.storage.models import Rollback

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rollback_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "service": "checkout",
        "environment": "production",
        "strategy": "instant",
        "state": "requested",
        "requested_by": "U0ALICE",
        "reason": "error rate",
        "approvals_required": 1,
        "created_at": T0,
        "updated_at": T0,
        "plan": {"to_revision": "41"},
    }
    fields.update(overrides)
    return fields


def new_rollback(**overrides: Any) -> Rollback:
    return Rollback(**rollback_fields(**overrides))
