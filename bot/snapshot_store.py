"""Checkpoints in the database, behind the executors' ``SnapshotStore`` protocol.

Snapshots are taken before every change (a rollback's first job). To restore
the ConfigMaps a revision used, we look for the newest ConfigMap snapshot
taken while that revision was live, among rollbacks of the same service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from bot.catalog import Catalog
from bot.executors.base import SnapshotRecord
from storage.models import Rollback, Snapshot
from storage.uow import UnitOfWorkFactory


class DbSnapshotStore:
    def __init__(self, uow: UnitOfWorkFactory, catalog: Catalog) -> None:
        self._uow = uow
        self._catalog = catalog

    def save(self, records: Sequence[SnapshotRecord]) -> None:
        """Nothing to do: the runner stores the records ``snapshot`` returns, with its rollback."""

    def configmaps_for_revision(
        self, *, namespace: str, deployment: str, revision: int
    ) -> dict[str, dict[str, Any]]:
        services = [
            s.name
            for s in self._catalog.services
            if s.namespace == namespace and s.deployment == deployment
        ]
        if not services:
            return {}
        with self._uow(read_only=True) as uow:
            stmt = (
                select(Snapshot)
                .join(Rollback, Rollback.id == Snapshot.rollback_id)
                .where(
                    Rollback.service.in_(services),
                    Rollback.drill.is_(False),
                    Snapshot.kind == "configmap",
                    Snapshot.namespace == namespace,
                    Snapshot.revision == str(revision),
                )
                .order_by(Snapshot.taken_at, Snapshot.id)
            )
            found: dict[str, dict[str, Any]] = {}
            for snap in uow.session.scalars(stmt):
                found[snap.name] = snap.body  # later snapshots win
            return found
