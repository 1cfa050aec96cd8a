"""Repositories: the domain-shaped, keyword-only way to read and write each table.

They share the unit of work's session and never commit; see ``storage.uow``.
"""

from storage.repositories.alerts import (
    AlertGroupRepository,
    AlertRecord,
    AlertRepository,
    UpsertResult,
)
from storage.repositories.idempotency import IdempotencyRepository
from storage.repositories.incidents import IncidentRepository
from storage.repositories.rollbacks import ApprovalRepository, RollbackRepository
from storage.repositories.snapshots import SnapshotRepository
from storage.repositories.timeline import TimelineRepository
from storage.repositories.triggers import TriggerFiringRepository

__all__ = [
    "AlertGroupRepository",
    "AlertRecord",
    "AlertRepository",
    "ApprovalRepository",
    "IdempotencyRepository",
    "IncidentRepository",
    "RollbackRepository",
    "SnapshotRepository",
    "TimelineRepository",
    "TriggerFiringRepository",
    "UpsertResult",
]
