"""What the runner is given to act through: the rollback writer and the people's side.

Protocols, so that the runner depends on the two calls it makes and not on the
classes behind them (``rollbacks.service.RollbackService``,
``slack.notifier.SlackNotifier``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from rollback_bot.catalog import Service
from rollback_bot.kube.model import Actor
from rollback_bot.rollbacks.lifecycle import Decision, Move
from rollback_bot.storage.models import Rollback
from rollback_bot.storage.uow import UnitOfWork


class Notifier(Protocol):
    """What the runner tells people; implemented over Slack in ``slack/notifier.py``."""

    def rollback_changed(self, row: Rollback, decision: Decision | None = None) -> None: ...

    def progress(self, row: Rollback, line: str) -> None: ...

    def finished(self, row: Rollback) -> None: ...


class Mitigate(Protocol):
    """Marks an incident mitigated in the caller's transaction (``incidents.lifecycle``)."""

    def __call__(
        self,
        uow: UnitOfWork,
        incident_id: int,
        *,
        at: datetime,
        actor: str,
        why: str,
        data: dict[str, Any] | None = None,
    ) -> bool: ...


class RollbackWriter(Protocol):
    """The one writer of rollbacks, as far as the runner uses it."""

    def system_move(
        self,
        rollback_id: int,
        move: Move,
        *,
        summary: str,
        kind: str | None = None,
        data: dict[str, Any] | None = None,
        update: Callable[[Rollback], None] | None = None,
        extra: Callable[[UnitOfWork, Rollback], None] | None = None,
        seen: Rollback | None = None,
    ) -> Decision | None: ...

    def record(
        self,
        rollback_id: int,
        *,
        kind: str,
        summary: str,
        data: dict[str, Any] | None = None,
        actor: str = ...,
        update: Callable[[Rollback], None] | None = None,
    ) -> None: ...

    def expire_if_stale(self, rollback_id: int) -> Service | None: ...

    def actor(self, service: Service, user: str) -> Actor: ...
