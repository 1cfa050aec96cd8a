"""Checkpoints in the database, behind the executors' ``SnapshotStore`` protocol.

Snapshots are taken before every change. The first, of everything a rollback
may touch, is returned by ``Executor.snapshot`` and stored by the runner in the
same transaction that moves the rollback to executing. Executors also call
``save`` right before a write, with the object exactly as they are about to
change it (a step retried or resumed later may find it changed since); those
are filed under the rollback whose step is running, which the runner names
with ``bound``. Outside a bound step ``save`` stores nothing: there is no
rollback to file it under, and the runner already keeps what ``snapshot``
returned.

To restore the ConfigMaps a revision used, we look for the newest ConfigMap
snapshot taken while that revision was live, among rollbacks of the same
service.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import select

from rollback_bot.catalog import Catalog
from rollback_bot.clock import Clock, SystemClock
from rollback_bot.kube.model import SnapshotRecord
from rollback_bot.storage.models import Rollback, Snapshot
from rollback_bot.storage.uow import UnitOfWork, UnitOfWorkFactory

_RUNNING: ContextVar[int | None] = ContextVar("running_rollback", default=None)


class DbSnapshotStore:
    def __init__(
        self, uow: UnitOfWorkFactory, catalog: Catalog, clock: Clock | None = None
    ) -> None:
        self._uow = uow
        self._catalog = catalog
        self._clock = clock or SystemClock()

    @contextmanager
    def bound(self, rollback_id: int) -> Iterator[None]:
        """While the block runs (in this thread), ``save`` files records under ``rollback_id``."""
        token = _RUNNING.set(rollback_id)
        try:
            yield
        finally:
            _RUNNING.reset(token)

    def save(self, records: Sequence[SnapshotRecord]) -> None:
        rollback_id = _RUNNING.get()
        if rollback_id is None or not records:
            return
        with self._uow() as uow:
            file_snapshots(uow, rollback_id, records, self._clock.now())
            uow.commit()

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


def file_snapshots(
    uow: UnitOfWork, rollback_id: int, records: Sequence[SnapshotRecord], now: datetime
) -> None:
    """Store checkpoints under their rollback, in the caller's transaction."""
    for r in records:
        uow.snapshots.add(
            rollback_id=rollback_id,
            kind=r.kind,
            namespace=r.namespace,
            name=r.name,
            revision=None if r.revision is None else str(r.revision),
            body=r.body,
            taken_at=now,
        )
