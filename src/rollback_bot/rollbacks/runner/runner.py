"""The runner: the only place rollbacks *run*, and the sink of every lifecycle decision.

Decisions come in through ``carry_out`` and stored jobs through ``run``; what each
one means is decided by the pure ``reactor`` and done here, by ``steps`` for the
execution jobs and below for countdowns and deadlines.

The runner and the rollback service need each other: the service hands each
decision's effects to the runner, and the runner makes its own moves through the
service. So the runner is given a factory for the service and builds it with
itself as the effect sink: both are complete when the constructor returns, and
nothing is assigned to either afterwards.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar, assert_never

from sqlalchemy.engine import Engine

from rollback_bot.catalog import Catalog
from rollback_bot.clock import Clock
from rollback_bot.executors.base import Executor
from rollback_bot.executors.health import HealthGate
from rollback_bot.executors.snapshot_store import DbSnapshotStore
from rollback_bot.ids import format_rollback_id as rid
from rollback_bot.kube.events import EventRecorder
from rollback_bot.logs import log_context
from rollback_bot.rollbacks.gitops import GitOpsPauser
from rollback_bot.rollbacks.lifecycle import Decision, Move, State
from rollback_bot.rollbacks.model import EffectSink
from rollback_bot.rollbacks.runner import reactor
from rollback_bot.rollbacks.runner.decided import deciding
from rollback_bot.rollbacks.runner.held import HeldNotifier
from rollback_bot.rollbacks.runner.jobs import JobKind
from rollback_bot.rollbacks.runner.ports import Mitigate, Notifier, RollbackWriter
from rollback_bot.rollbacks.runner.recovery import recover
from rollback_bot.rollbacks.runner.scheduling import JobScheduler
from rollback_bot.rollbacks.runner.steps import Steps
from rollback_bot.storage.models import Rollback
from rollback_bot.storage.uow import UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind

log = logging.getLogger(__name__)

# A countdown message is refreshed this often ("in 50 s"); the outbox coalesces
# the edits, so a refresh never costs more than Slack's per-channel limit allows.
COUNTDOWN_REFRESH_SECONDS = 10.0

W = TypeVar("W", bound=RollbackWriter)


class Runner(EffectSink, Generic[W]):
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
        rollbacks: Callable[[EffectSink], W],
        snapshots: DbSnapshotStore | None = None,
        mitigate: Mitigate | None = None,
        events: EventRecorder | None = None,
        gitops: GitOpsPauser | None = None,
    ) -> None:
        self._catalog = catalog
        self._uow = uow
        self._clock = clock
        # Its words about a rollback wait while a job started here heads for its first write.
        self.notifier = HeldNotifier(notifier)
        self.jobs = JobScheduler(engine=engine, clock=clock, dispatch=self.run)
        self._serial = tuple(threading.RLock() for _ in range(64))
        # The service only keeps its sink here; it calls it once the constructor is done.
        self.rollbacks: W = rollbacks(self)
        self._steps = Steps(
            catalog=catalog,
            uow=uow,
            clock=clock,
            executors=executors,
            gate=gate,
            notifier=self.notifier,
            rollbacks=self.rollbacks,
            jobs=self.jobs,
            snapshots=snapshots,
            mitigate=mitigate,
            events=events,
            gitops=gitops,
        )
        self._handlers: dict[JobKind, Callable[[int], object]] = {
            JobKind.EXECUTE: self._steps.execute,
            JobKind.STEP: self._steps.step,
            JobKind.LAST: self._steps.last,
            JobKind.GATE: self._steps.gate,
            JobKind.VERIFY: self._steps.verify,
            JobKind.COUNTDOWN: self._countdown_elapsed,
            JobKind.REFRESH: self._refresh_countdown,
            JobKind.EXPIRE: self.rollbacks.expire_if_stale,
        }

    # -- lifecycle of the runner itself ------------------------------------------
    def start(self) -> None:
        # Paused until recovery has restarted countdowns: a stored countdown job
        # whose time came while the bot was down must not fire first.
        self.jobs.start_paused()
        self.recover()
        self.jobs.resume()

    def start_following(self) -> None:
        """Start as a follower: decisions still store their jobs, none runs here.

        Another replica leads and runs them; ``lead`` makes this one the runner.
        """
        self.jobs.start_paused()

    def lead(self, *, poll_seconds: float = 0.5) -> None:
        """Become the replica that runs jobs: recover what the last leader left, then run."""
        self.jobs.pause()
        self.recover()
        self.jobs.resume_polling(poll_seconds)

    def follow(self) -> None:
        """Stop running jobs at once (the lease is lost); a job already running finishes."""
        self.jobs.pause()

    def stop(self) -> None:
        self.jobs.stop()

    def recover(self) -> None:
        """After a restart: resume what was safe to resume, pause what was mid-step."""
        recover(uow=self._uow, jobs=self.jobs, step_seconds=self._step_seconds, perform=self._do)

    # -- decisions and jobs in ------------------------------------------------------
    def carry_out(self, rollback: Rollback, decision: Decision) -> None:
        step_seconds = self._step_seconds(rollback)
        actions = reactor.after_decision(decision, step_seconds=step_seconds)
        if reactor.Schedule(JobKind.EXECUTE) in actions:
            # Held before the job can start: it releases them after its first write.
            self.notifier.hold(rollback.id)
        try:
            with deciding(rollback):
                for action in actions:
                    self._do(rollback, action, decision)
        except BaseException:
            self.notifier.release(rollback.id)  # the job may never start to release them
            raise

    def run(self, rollback_id: int, kind: JobKind) -> None:
        """Run one job; every job re-reads the rollback and may find nothing to do.

        One rollback's jobs run one at a time in this process, whichever way they
        came (the job store, or at once after a decision).
        """
        try:
            with self._serial[rollback_id % len(self._serial)], log_context(rollback=rollback_id):
                self._handlers[kind](rollback_id)
        except Exception as exc:  # the last line of defence: say it, never lose it
            log.exception("%s job for %s failed", kind.value, rid(rollback_id))
            self._steps.fail(rollback_id, f"internal error during {kind.value}: {exc!r}")
        finally:
            self.notifier.release(rollback_id)  # nothing held stays held past its job

    # -- acting on the reactor's actions ---------------------------------------------
    def _do(self, row: Rollback, action: reactor.Action, decision: Decision | None = None) -> None:
        if isinstance(action, reactor.Schedule):
            started = self.jobs.after(row.id, action.kind, delay=action.delay)
            if action.kind is JobKind.EXECUTE and not started:
                self.notifier.release(row.id)  # stored, for later or another replica: no wait
        elif isinstance(action, reactor.ScheduleExpiry):
            self._schedule_expiry(row)
        elif isinstance(action, reactor.CancelJobs):
            self.jobs.cancel(row.id)
        elif isinstance(action, reactor.StartCountdown):
            self._start_countdown(row, announce=action.announce)
        elif isinstance(action, reactor.UpdateMessage):
            self.notifier.rollback_changed(row, decision)
        elif isinstance(action, reactor.Announce):
            self.notifier.finished(row)
        elif isinstance(action, reactor.PauseMidStep):
            self._steps.pause(
                row.id,
                Move.PAUSE,
                summary=f"the bot restarted while step {action.step + 1} of {rid(row.id)} was "
                "running; paused so nothing repeats blindly. Resume re-reads the cluster "
                "and applies only what is missing; or abort.",
                kind=TimelineKind.ROLLBACK_PAUSED,
            )
        else:
            assert_never(action)

    def _step_seconds(self, row: Rollback) -> float:
        service = self._catalog.service(row.service)
        return service.gradual.step_seconds if service and service.gradual else 0

    # -- countdowns and deadlines -----------------------------------------------------
    def _start_countdown(self, row: Rollback, *, announce: bool) -> None:
        """A countdown always runs its whole visible length, also after a restart."""
        seconds = float((row.plan.get("detail") or {}).get("countdown_seconds", 60))
        deadline = self._clock.now() + timedelta(seconds=seconds)
        self.rollbacks.record(
            row.id,
            kind=TimelineKind.COUNTDOWN_STARTED,
            summary=f"automatic rollback {rid(row.id)} of {row.service} in {seconds:.0f} s "
            "unless someone cancels",
            update=lambda r: setattr(r, "deadline_at", deadline),
        )
        row.deadline_at = deadline
        self.jobs.after(row.id, JobKind.COUNTDOWN, delay=seconds)
        self._schedule_refresh(row.id, deadline)
        if announce:
            self.notifier.rollback_changed(row)

    def _schedule_refresh(self, rollback_id: int, deadline: datetime) -> None:
        """Redraw the countdown message every few seconds until its deadline."""
        if (deadline - self._clock.now()).total_seconds() <= COUNTDOWN_REFRESH_SECONDS:
            return
        self.jobs.every(
            rollback_id, JobKind.REFRESH, seconds=COUNTDOWN_REFRESH_SECONDS, until=deadline
        )

    def _refresh_countdown(self, rollback_id: int) -> None:
        with self._uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=rollback_id)
        if row is not None and row.state == State.SCHEDULED:
            self.notifier.rollback_changed(row)

    def _countdown_elapsed(self, rollback_id: int) -> None:
        self.rollbacks.system_move(
            rollback_id,
            Move.COUNTDOWN_ELAPSED,
            summary=f"countdown for {rid(rollback_id)} elapsed with nobody cancelling; starting",
            kind=TimelineKind.COUNTDOWN_ELAPSED,
        )

    def _schedule_expiry(self, row: Rollback) -> None:
        """Close a request nobody approved once its approval window has passed."""
        service = self._catalog.service(row.service)
        if service is None:
            return
        ttl = service.policy.approval_ttl_seconds
        when = row.created_at + timedelta(seconds=ttl, milliseconds=100)
        self.jobs.at(row.id, JobKind.EXPIRE, when)
