"""Snapshots of Kubernetes objects taken before a rollback changes them, for restoring."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from rollback_bot.storage.models import Snapshot
from rollback_bot.storage.repositories._base import Repository


class SnapshotRepository(Repository):
    def add(
        self,
        *,
        rollback_id: int,
        kind: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        taken_at: datetime,
        revision: str | None = None,
    ) -> Snapshot:
        snapshot = Snapshot(
            rollback_id=rollback_id,
            kind=kind,
            namespace=namespace,
            name=name,
            body=body,
            taken_at=taken_at,
            revision=revision,
        )
        self._session.add(snapshot)  # inserted with the rest at the commit's one flush
        return snapshot

    def list_for(self, *, rollback_id: int, kind: str | None = None) -> list[Snapshot]:
        """In the order they were taken."""
        stmt = select(Snapshot).where(Snapshot.rollback_id == rollback_id)
        if kind is not None:
            stmt = stmt.where(Snapshot.kind == kind)
        return list(self._session.scalars(stmt.order_by(Snapshot.id)))
