"""Carries out what the lifecycle decided: the only place rollbacks *run*.

Work is scheduled as APScheduler jobs in the database (its SQLAlchemy job
store), one job at a time per rollback, so that a restart finds pending steps,
gates and countdowns where they were. Every job re-reads the rollback and does
nothing unless the state still calls for it: a late or duplicated job is
harmless. Executors are asked to apply one step at a time and re-decide from
the cluster's current state, so no step is ever replayed blindly.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Engine

from rollback_bot.catalog import Catalog, Service
from rollback_bot.clock import Clock
from rollback_bot.executors.base import ExecutionError, Executor, Plan, StepResult
from rollback_bot.executors.snapshot_store import DbSnapshotStore, file_snapshots
from rollback_bot.logs import log_context
from rollback_bot.rollbacks.health import HealthGate
from rollback_bot.rollbacks.lifecycle import Decision, Effect, Move, State
from rollback_bot.rollbacks.service import BOT, EffectSink, RollbackService, rid
from rollback_bot.storage.models import Rollback
from rollback_bot.storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)

_CURRENT: dict[str, Runner] = {}
RETRY_LIMIT = 3
# A countdown message is refreshed this often ("in 50 s"); the outbox coalesces
# the edits, so a refresh never costs more than Slack's per-channel limit allows.
COUNTDOWN_REFRESH_SECONDS = 10.0
VERIFY_POLL_SECONDS = 0.5


def run_job(rollback_id: int, kind: str) -> None:
    """Entry point of every stored job (a module-level function, so it survives pickling)."""
    runner = _CURRENT.get("runner")
    if runner is None:
        log.warning("job %s for %s ran with no runner", kind, rid(rollback_id))
        return
    with log_context(rollback=rollback_id):
        runner.run(rollback_id, kind)


class Notifier(Protocol):
    """What the runner tells people; implemented over Slack in bot/notifier.py."""

    def rollback_changed(self, row: Rollback, decision: Decision | None = None) -> None: ...

    def progress(self, row: Rollback, line: str) -> None: ...

    def finished(self, row: Rollback) -> None: ...


class Runner(EffectSink):
    def __init__(
        self,
        *,
        catalog: Catalog,
        uow: UnitOfWorkFactory,
        clock: Clock,
        executors: Callable[[str], Executor],
        gate: HealthGate,
        notifier: Notifier,
        engine: Engine,
        snapshots: DbSnapshotStore | None = None,
    ) -> None:
        self._catalog = catalog
        self._snapshots = snapshots
        self._uow = uow
        self._clock = clock
        self._executors = executors
        self._gate = gate
        self.notifier = notifier
        self.rollbacks: RollbackService | None = None  # set by the composition root
        self._attempts: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine)},
            executors={"default": ThreadPoolExecutor(max_workers=8)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
            timezone="UTC",
        )

    # -- lifecycle of the runner itself ------------------------------------------
    def start(self) -> None:
        _CURRENT["runner"] = self
        # Paused until recovery has restarted countdowns: a stored countdown job
        # whose time came while the bot was down must not fire first.
        self.scheduler.start(paused=True)
        self.recover()
        self.scheduler.resume()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if _CURRENT.get("runner") is self:
            del _CURRENT["runner"]

    def recover(self) -> None:
        """After a restart: resume what was safe to resume, pause what was mid-step."""
        with self._uow(read_only=True) as uow:
            active = uow.rollbacks.list_by_state(
                states=[State.SCHEDULED, State.APPROVED, State.EXECUTING, State.VERIFYING]
            )
        for row in active:
            state = State(row.state)
            if state is State.SCHEDULED:
                # Nobody could cancel while the bot was down: the full length again.
                self._restart_countdown(row)
                continue
            pending = {j.id for j in self.scheduler.get_jobs() if j.id.startswith(f"rb{row.id}-")}
            if pending:
                continue
            if state is State.APPROVED:
                self._schedule(row.id, "execute")
            elif state is State.VERIFYING:
                self._schedule(row.id, "verify")
            elif state is State.EXECUTING and self._between_steps(row.id):
                # The last step was applied *and* recorded; only its gate job was lost.
                self._schedule(row.id, "gate", delay=self._step_wait(row))
            elif state is State.EXECUTING:
                self._pause(
                    row.id,
                    Move.PAUSE,
                    summary=f"the bot restarted while step {row.step + 1} of {rid(row.id)} was "
                    "running; paused so nothing repeats blindly. Resume re-reads the cluster "
                    "and applies only what is missing; or abort.",
                    kind="rollback.paused",
                )

    # -- effects -------------------------------------------------------------------
    def carry_out(self, rollback: Rollback, decision: Decision) -> None:
        effects = decision.effects
        if Effect.ASK_APPROVAL in effects:
            self._schedule_expiry(rollback)
        if Effect.CANCEL_COUNTDOWN in effects or Effect.HALT in effects:
            self._unschedule(rollback.id)
        if Effect.START_COUNTDOWN in effects:
            self._restart_countdown(rollback, announce=False)
        if Effect.EXECUTE in effects:
            self._schedule(rollback.id, "execute")
        if Effect.NEXT_STEP in effects:
            if decision.move is Move.SKIP_TO_END:
                self._schedule(rollback.id, "last")
            elif decision.move is Move.RESUME:
                self._schedule(rollback.id, "step")
            else:
                self._schedule(rollback.id, "gate", delay=self._step_wait(rollback))
        if Effect.VERIFY in effects:
            self._schedule(rollback.id, "verify")
        self.notifier.rollback_changed(rollback, decision)
        if decision.after.is_terminal:
            self.notifier.finished(rollback)

    # -- scheduling ----------------------------------------------------------------
    def _schedule(self, rollback_id: int, kind: str, *, delay: float = 0) -> None:
        when = self._clock.now() + timedelta(seconds=delay)
        self.scheduler.add_job(
            run_job,
            trigger="date",
            run_date=when,
            args=[rollback_id, kind],
            id=f"rb{rollback_id}-{kind}",
            replace_existing=True,
            misfire_grace_time=1 if kind == "countdown" else 3600,
        )

    def _schedule_expiry(self, row: Rollback) -> None:
        """Close a request nobody approved once its approval window has passed.

        Like the countdown refresh, its id stays outside the ``rb<id>-`` namespace:
        recovery reads that as "work pending", and a deadline is not work.
        """
        service = self._catalog.service(row.service)
        if service is None:
            return
        ttl = service.policy.approval_ttl_seconds
        self.scheduler.add_job(
            run_job,
            trigger="date",
            run_date=row.created_at + timedelta(seconds=ttl, milliseconds=100),
            args=[row.id, "expire"],
            id=f"expire-{row.id}",
            replace_existing=True,
            misfire_grace_time=None,  # late is fine: expiring is checked against the clock
        )

    def _expire(self, rollback_id: int) -> None:
        assert self.rollbacks is not None
        self.rollbacks.expire_if_stale(rollback_id)

    def _unschedule(self, rollback_id: int) -> None:
        for job in self.scheduler.get_jobs():
            if job.id.startswith(f"rb{rollback_id}-") or job.id == _tick_id(rollback_id):
                with contextlib.suppress(JobLookupError):
                    job.remove()

    def _restart_countdown(self, row: Rollback, *, announce: bool = True) -> None:
        """A countdown always runs its whole visible length, also after a restart."""
        seconds = float((row.plan.get("detail") or {}).get("countdown_seconds", 60))
        deadline = self._clock.now() + timedelta(seconds=seconds)
        assert self.rollbacks is not None
        self.rollbacks.record(
            row.id,
            kind="countdown.started",
            summary=f"automatic rollback {rid(row.id)} of {row.service} in {seconds:.0f} s "
            "unless someone cancels",
            update=lambda r: setattr(r, "deadline_at", deadline),
        )
        row.deadline_at = deadline
        self._schedule(row.id, "countdown", delay=seconds)
        self._schedule_refresh(row.id, deadline)
        if announce:
            self.notifier.rollback_changed(row)

    def _schedule_refresh(self, rollback_id: int, deadline: datetime) -> None:
        """Refresh the countdown message every few seconds until its deadline.

        Its id is outside the ``rb<id>-`` namespace on purpose: recovery reads
        that namespace as "work pending", and a refresh is not work.
        """
        if (deadline - self._clock.now()).total_seconds() <= COUNTDOWN_REFRESH_SECONDS:
            return
        self.scheduler.add_job(
            run_job,
            trigger="interval",
            seconds=COUNTDOWN_REFRESH_SECONDS,
            end_date=deadline,
            args=[rollback_id, "refresh"],
            id=_tick_id(rollback_id),
            replace_existing=True,
            misfire_grace_time=1,
        )

    def _refresh_countdown(self, rollback_id: int) -> None:
        with self._uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=rollback_id)
        if row is not None and row.state == State.SCHEDULED:
            self.notifier.rollback_changed(row)

    # -- jobs ------------------------------------------------------------------------
    def run(self, rollback_id: int, kind: str) -> None:
        handler = {
            "refresh": self._refresh_countdown,
            "execute": self._execute,
            "step": self._step,
            "last": self._last_step,
            "gate": self._gate_check,
            "verify": self._verify,
            "countdown": self._countdown,
            "expire": self._expire,
        }[kind]
        try:
            handler(rollback_id)
        except Exception as exc:  # the last line of defence: say it, never lose it
            log.exception("%s job for %s failed", kind, rid(rollback_id))
            self._fail(rollback_id, f"internal error during {kind}: {exc!r}")

    def _load(self, rollback_id: int, state: State) -> tuple[Rollback, Service, Executor] | None:
        with self._uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=rollback_id)
        if row is None or row.state != state:
            return None  # a late or duplicate job: the state moved on
        service = self._catalog.service(row.service)
        if service is None:
            self._fail(rollback_id, f"service {row.service} is no longer in the catalog")
            return None
        return row, service, self._executors(row.strategy)

    def _countdown(self, rollback_id: int) -> None:
        assert self.rollbacks is not None
        self.rollbacks.system_move(
            rollback_id,
            Move.COUNTDOWN_ELAPSED,
            summary=f"countdown for {rid(rollback_id)} elapsed with nobody cancelling; starting",
            kind="countdown.elapsed",
        )

    def _execute(self, rollback_id: int) -> None:
        loaded = self._load(rollback_id, State.APPROVED)
        if loaded is None:
            return
        row, service, executor = loaded
        try:
            records = executor.snapshot(service)
        except ExecutionError as exc:
            self._retry_or_fail(rollback_id, "execute", exc)
            return
        assert self.rollbacks is not None

        def save(uow: Any, r: Rollback) -> None:
            file_snapshots(uow, r.id, records, self._clock.now())

        drill = "DRILL: " if row.drill else ""
        self.rollbacks.system_move(
            rollback_id,
            Move.BEGIN,
            summary=f"{drill}executing {rid(rollback_id)}: snapshot of "
            + ", ".join(f"{r.kind}/{r.name}" for r in records),
            kind="rollback.executing",
            extra=save,
        )
        self._step(rollback_id)

    def _step(self, rollback_id: int) -> None:
        loaded = self._load(rollback_id, State.EXECUTING)
        if loaded is None:
            return
        row, service, executor = loaded
        plan = Plan.from_dict(row.plan)
        self._announce_step(row, plan)
        try:
            with self._bound(rollback_id):
                result = executor.apply_step(
                    service, plan, step=row.step, actor=self._actor(row, service), drill=row.drill
                )
        except ExecutionError as exc:
            self._retry_or_fail(rollback_id, "step", exc)
            return
        self._attempts.pop((rollback_id, "step"), None)
        self._tell_changes(row, result)
        assert self.rollbacks is not None
        next_step = result.step + 1
        save_changes = _change_recorder(result, self._clock.now())
        if result.finished:
            moved = self.rollbacks.system_move(
                rollback_id,
                Move.APPLIED,
                summary=f"{rid(rollback_id)} applied ({result.message}); verifying",
                kind="rollback.verifying",
                update=lambda r: _set_verifying(r, next_step, service, self._clock.now()),
                extra=save_changes,
            )
        else:
            moved = self.rollbacks.system_move(
                rollback_id,
                Move.STEP_DONE,
                summary=f"{rid(rollback_id)} step {next_step}/{len(plan.steps)}: {result.message}",
                kind="rollback.step",
                update=lambda r: setattr(r, "step", next_step),
                extra=save_changes,
            )
        if moved is None and result.changes:
            # Someone aborted or paused while the step ran: its writes still happened.
            with self._uow() as uow:
                save_changes(uow, row)
                uow.commit()

    def _announce_step(self, row: Rollback, plan: Plan) -> None:
        """Written before the write, so a crash in between still leaves a trace."""
        if len(plan.steps) < 2:
            return  # single-step strategies: "executing" already says it
        assert self.rollbacks is not None
        line = plan.changes[row.step] if row.step < len(plan.changes) else ""
        self.rollbacks.record(
            row.id,
            kind="rollback.applying",
            summary=f"{'DRILL: ' if row.drill else ''}applying step {row.step + 1}/"
            f"{len(plan.steps)}" + (f": {line}" if line else ""),
            data={"step": row.step},
        )

    def _last_step(self, rollback_id: int) -> None:
        """ "Go to 0 now": the final step, straight away, with no gate in between."""
        loaded = self._load(rollback_id, State.EXECUTING)
        if loaded is None:
            return
        row, _, _ = loaded
        last = max(len(Plan.from_dict(row.plan).steps) - 1, 0)
        if row.step != last:
            assert self.rollbacks is not None
            self.rollbacks.record(
                rollback_id,
                kind="rollback.skipped",
                summary=f"skipping to the last step ({last + 1}) of {rid(rollback_id)}",
                data={"from_step": row.step, "to_step": last},
                update=lambda r: setattr(r, "step", last),
            )
        self._step(rollback_id)

    def _gate_check(self, rollback_id: int) -> None:
        loaded = self._load(rollback_id, State.EXECUTING)
        if loaded is None:
            return
        row, service, _ = loaded
        result = self._gate.check(service)
        assert self.rollbacks is not None
        if result.ok:
            self.rollbacks.record(
                rollback_id,
                kind="health.passed",
                summary=f"health gate green before step {row.step + 1}",
                data={"checks": result.checks},
            )
            self._step(rollback_id)
            return
        self._pause(
            rollback_id,
            Move.GATE_FAILED,
            summary=f"health gate failed before step {row.step + 1}, {rid(rollback_id)} paused: "
            + "; ".join(result.reasons)
            + ". Resume to continue, go to 0% now, or abort.",
            kind="health.failed",
            data={"checks": result.checks, "reasons": list(result.reasons)},
        )

    def _verify(self, rollback_id: int) -> None:
        loaded = self._load(rollback_id, State.VERIFYING)
        if loaded is None:
            return
        row, service, executor = loaded
        plan = Plan.from_dict(row.plan)
        try:
            seen = executor.verify(service, plan, drill=row.drill)
        except ExecutionError as exc:
            self._retry_or_fail(rollback_id, "verify", exc)
            return
        assert self.rollbacks is not None
        deadline = row.deadline_at or self._clock.now()
        if seen.done and seen.ok and not row.drill:
            gate = self._gate.check(service)
            if not gate.ok:
                seen = type(seen)(ok=False, done=False, detail="; ".join(gate.reasons))
        if seen.done and seen.ok:
            self.rollbacks.system_move(
                rollback_id,
                Move.VERIFIED,
                summary=f"{rid(rollback_id)} verified: {seen.detail}"
                + (" (drill: nothing was changed)" if row.drill else ""),
                kind="rollback.done",
            )
        elif (seen.done and not seen.ok) or self._clock.now() >= deadline:
            self._fail(
                rollback_id,
                f"not healthy within {service.health.timeout_seconds:.0f} s: {seen.detail}",
            )
        else:
            self._schedule(rollback_id, "verify", delay=VERIFY_POLL_SECONDS)

    # -- helpers -----------------------------------------------------------------------
    def _bound(self, rollback_id: int) -> contextlib.AbstractContextManager[None]:
        """Checkpoints an executor saves during the step are filed under this rollback."""
        if self._snapshots is None:
            return contextlib.nullcontext()
        return self._snapshots.bound(rollback_id)

    def _actor(self, row: Rollback, service: Service) -> Any:
        assert self.rollbacks is not None
        with self._uow(read_only=True) as uow:
            approvals = [
                a for a in uow.approvals.list_for(rollback_id=row.id) if a.decision == "approve"
            ]
        who = approvals[-1].actor if approvals else row.requested_by
        return self.rollbacks.actor(service, who)

    def _tell_changes(self, row: Rollback, result: StepResult) -> None:
        """One thread reply per step, however many objects it wrote: the thread stays readable."""
        lines = [
            f"{'dry run: ' if c.dry_run else ''}{c.verb} `{c.kind}/{c.name}`: {c.summary}"
            for c in result.changes
        ]
        if result.noop or not lines:
            lines.append(result.message)
        self.notifier.progress(row, "\n".join(lines))

    def _retry_or_fail(self, rollback_id: int, kind: str, exc: ExecutionError) -> None:
        key = (rollback_id, kind)
        with self._lock:
            self._attempts[key] = attempts = self._attempts.get(key, 0) + 1
        assert self.rollbacks is not None
        self.rollbacks.record(
            rollback_id,
            kind="error",
            summary=f"{kind} attempt {attempts} failed: {exc}",
            data={"retryable": exc.retryable, "attempt": attempts},
        )
        if exc.retryable and attempts < RETRY_LIMIT:
            self._schedule(rollback_id, kind, delay=float(2**attempts) / 2)
            return
        self._attempts.pop(key, None)
        if kind == "step" and self._half_done(rollback_id):
            self._pause(
                rollback_id,
                Move.PAUSE,
                summary=f"{rid(rollback_id)} paused half-way: {exc}. Earlier steps are in "
                "place; resume to try this step again, go to 0% now, or abort.",
                kind="rollback.paused",
                data={"error": str(exc), "attempts": attempts},
            )
            return
        # A single-step executor says in its message what it already wrote, if anything.
        self._fail(rollback_id, str(exc))

    def _pause(
        self,
        rollback_id: int,
        move: Move,
        *,
        summary: str,
        kind: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Pause and ask the thread: the reason goes there word for word, not only the state."""
        assert self.rollbacks is not None
        decision = self.rollbacks.system_move(
            rollback_id, move, summary=summary, kind=kind, data=data
        )
        if decision is None:
            return
        with self._uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=rollback_id)
        if row is not None:
            self.notifier.progress(row, f":warning: {summary}")

    def _between_steps(self, rollback_id: int) -> bool:
        with self._uow(read_only=True) as uow:
            events = uow.timeline.list_for_rollback(rollback_id=rollback_id)
        return bool(events) and events[-1].kind == "rollback.step"

    def _step_wait(self, row: Rollback) -> float:
        service = self._catalog.service(row.service)
        return service.gradual.step_seconds if service and service.gradual else 0

    def _half_done(self, rollback_id: int) -> bool:
        with self._uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=rollback_id)
        return row is not None and row.state == State.EXECUTING and row.step > 0

    def _fail(self, rollback_id: int, why: str) -> None:
        assert self.rollbacks is not None
        self.rollbacks.system_move(
            rollback_id,
            Move.FAIL,
            summary=f"{rid(rollback_id)} FAILED: {why}",
            kind="rollback.failed",
            update=lambda r: setattr(r, "error", why),
        )


def _tick_id(rollback_id: int) -> str:
    return f"countdown-refresh-{rollback_id}"


def _set_verifying(row: Rollback, step: int, service: Service, now: datetime) -> None:
    row.step = step
    row.deadline_at = now + timedelta(seconds=service.health.timeout_seconds)


def _change_recorder(result: StepResult, now: datetime) -> Callable[[Any, Rollback], None]:
    """Kubernetes writes of a step, stored in the same transaction as the step's move."""

    def save(uow: Any, row: Rollback) -> None:
        for change in result.changes:
            prefix = "dry run: " if change.dry_run else ""
            uow.timeline.append(
                at=now,
                actor=BOT,
                kind="kube.changed",
                summary=f"{prefix}{change.verb} {change.kind}/{change.name}: {change.summary}",
                incident_id=row.incident_id,
                rollback_id=row.id,
                service=row.service,
                data={
                    "verb": change.verb,
                    "kind": change.kind,
                    "namespace": change.namespace,
                    "name": change.name,
                    "dry_run": change.dry_run,
                    "step": result.step,
                },
            )

    return save
