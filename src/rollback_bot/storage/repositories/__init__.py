"""Repositories: the domain-shaped, keyword-only way to read and write each table.

They share the unit of work's session and never commit; see ``rollback_bot.storage.uow``.
"""

from rollback_bot.storage.repositories.alerts import (
    AlertGroupRepository,
    AlertRecord,
    AlertRepository,
    UpsertResult,
)
from rollback_bot.storage.repositories.idempotency import IdempotencyRepository
from rollback_bot.storage.repositories.incidents import IncidentRepository
from rollback_bot.storage.repositories.rollbacks import ApprovalRepository, RollbackRepository
from rollback_bot.storage.repositories.snapshots import SnapshotRepository
from rollback_bot.storage.repositories.timeline import TimelineRepository
from rollback_bot.storage.repositories.triggers import TriggerFiringRepository
from rollback_bot.storage.repositories.verdicts import ReleaseVerdictRepository

__all__ = [
    "AlertGroupRepository",
    "AlertRecord",
    "AlertRepository",
    "ApprovalRepository",
    "IdempotencyRepository",
    "IncidentRepository",
    "ReleaseVerdictRepository",
    "RollbackRepository",
    "SnapshotRepository",
    "TimelineRepository",
    "TriggerFiringRepository",
    "UpsertResult",
]
