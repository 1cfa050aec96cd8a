"""The transactional core of the one writer: state, its timeline entry, one commit.

``RollbackWriter`` holds what the bot itself writes (moves made by the runner and the
countdown, timeline records that change no state, refusals) and the one way a decision is
applied to a row. ``RollbackService`` builds on it with the moves people make; nothing
else in the product writes a rollback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rollback_bot.catalog import Catalog
from rollback_bot.clock import Clock
from rollback_bot.ids import format_rollback_id as rid
from rollback_bot.rollbacks import lifecycle
from rollback_bot.rollbacks.lifecycle import Decision, IllegalMove, Move, State
from rollback_bot.rollbacks.model import BOT, EffectSink
from rollback_bot.rollbacks.targets import BAD, record_verdict
from rollback_bot.storage.errors import ConcurrentUpdate
from rollback_bot.storage.models import Rollback
from rollback_bot.storage.uow import UnitOfWork, UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind

log = logging.getLogger(__name__)


class RollbackWriter:
    """Set up by ``RollbackService.__init__``; never built on its own."""

    _catalog: Catalog
    _uow: UnitOfWorkFactory
    _clock: Clock
    effects: EffectSink

    # -- moves by the system (runner, countdown) -------------------------------
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
    ) -> Decision | None:
        """A move made by the bot itself; returns None if it was no longer legal.

        ``seen``: the row as the caller has just read it, which the first attempt decides
        and writes on instead of reading it again; its version guards the write, so if
        the row moved meanwhile the write is refused and the retry reads it afresh.
        """
        for _attempt in range(5):
            try:
                outcome = self._system_move_once(
                    rollback_id, move, summary, kind, data, update, extra, seen
                )
            except ConcurrentUpdate:
                seen = None
                continue  # someone else moved it first: re-read and decide again
            if outcome is None:
                return None
            row, decision = outcome
            self.effects.carry_out(row, decision)
            return decision
        log.error("%s: gave up on %s after repeated concurrent updates", rid(rollback_id), move)
        return None

    def _system_move_once(
        self,
        rollback_id: int,
        move: Move,
        summary: str,
        kind: str | None,
        data: dict[str, Any] | None,
        update: Callable[[Rollback], None] | None,
        extra: Callable[[UnitOfWork, Rollback], None] | None,
        seen: Rollback | None = None,
    ) -> tuple[Rollback, Decision] | None:
        now = self._clock.now()
        with self._uow() as uow:
            if seen is not None and seen.id == rollback_id:
                row: Rollback | None = uow.rollbacks.attach(seen)
            else:
                row = uow.rollbacks.get(id=rollback_id)
            if row is None:
                return None
            try:
                decision = lifecycle.decide(State(row.state), move)
            except IllegalMove as exc:
                log.info("%s: %s", rid(rollback_id), exc)
                return None
            self._apply(uow, row, decision, now)
            if update:
                update(row)
            if extra:
                extra(uow, row)
            uow.timeline.append(
                at=now,
                actor=BOT,
                kind=kind or TimelineKind.rollback_entered(decision.after),
                summary=summary,
                incident_id=row.incident_id,
                rollback_id=row.id,
                service=row.service,
                data=data or {},
            )
            uow.commit()
        return row, decision

    def record(
        self,
        rollback_id: int,
        *,
        kind: str,
        summary: str,
        data: dict[str, Any] | None = None,
        actor: str = BOT,
        update: Callable[[Rollback], None] | None = None,
    ) -> None:
        """A timeline event that is not a state change (a Kubernetes write, a health result)."""
        with self._uow() as uow:
            row = uow.rollbacks.get(id=rollback_id)
            if row is None:
                return
            if update:
                update(row)
                row.updated_at = self._clock.now()
            uow.timeline.append(
                at=self._clock.now(),
                actor=actor,
                kind=kind,
                summary=summary,
                incident_id=row.incident_id,
                rollback_id=row.id,
                service=row.service,
                data=data or {},
            )
            uow.commit()

    def _apply(self, uow: UnitOfWork, row: Rollback, decision: Decision, now: Any) -> None:
        row.state = decision.after.value
        row.updated_at = now
        if decision.after.is_terminal:
            row.finished_at = now
        if decision.after in (State.DONE, State.FAILED):
            self._remember_rolled_back_from(uow, row, now)

    def _remember_rolled_back_from(self, uow: UnitOfWork, row: Rollback, now: Any) -> None:
        """The release a rollback left is known bad: it is never proposed again."""
        if row.drill or row.strategy == "flag" or not (row.from_image or row.plan):
            return
        detail = (row.plan or {}).get("detail") or {}
        outcome = "done" if row.state == State.DONE else "failed"
        record_verdict(
            uow,
            service=row.service,
            template_hash=detail.get("from_template_hash"),
            images=row.from_image,
            verdict=BAD,
            source="rollback",
            actor=row.requested_by,
            at=now,
            reason=(row.reason or "") + (" (the rollback failed)" if outcome == "failed" else ""),
            incident_id=row.incident_id,
            rollback_id=row.id,
        )

    def refuse(
        self,
        *,
        service: str,
        actor: str,
        what: str,
        why: str,
        rollback_id: int | None = None,
        incident_id: int | None = None,
    ) -> None:
        with self._uow() as uow:
            if incident_id is None:
                incident = uow.incidents.open_for_service(service=service)
                incident_id = incident.id if incident else None
            uow.timeline.append(
                at=self._clock.now(),
                actor=actor,
                kind=TimelineKind.ROLLBACK_REFUSED,
                summary=f"refused {what} by {actor}: {why}",
                incident_id=incident_id,
                rollback_id=rollback_id,
                service=service,
                data={"action": what, "reason": why},
            )
            uow.commit()
