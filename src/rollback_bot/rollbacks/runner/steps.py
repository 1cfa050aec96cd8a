"""The execution jobs: snapshot and begin, apply a step, gate it, verify, and retry.

Every job re-reads the rollback and does nothing unless its state still calls
for it, so a late or duplicated job is harmless. Executors apply one step at a
time and re-decide from the cluster's current state, so no step is replayed
blindly. Before a step's first write the row notes the step as in flight, and
the same transaction that records the step's writes clears it: that is what a
restarted runner reads (``reactor.after_restart``). Failed attempts are counted
on the row too, with their timeline entry, so a restart does not reset them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from rollback_bot.catalog import Catalog, Service
from rollback_bot.clock import Clock
from rollback_bot.executors.base import Executor, Plan, StepResult
from rollback_bot.executors.health import GateResult, HealthGate
from rollback_bot.executors.kept_reads import first_step_reads
from rollback_bot.executors.snapshot_store import DbSnapshotStore, file_snapshots
from rollback_bot.ids import format_incident_id
from rollback_bot.ids import format_rollback_id as rid
from rollback_bot.kube.events import (
    FAILED,
    PAUSED,
    ROLLED_BACK,
    STARTED,
    EventRecorder,
)
from rollback_bot.kube.model import Actor, ExecutionError
from rollback_bot.rollbacks.gitops import GitOpsPauser, planned_owner
from rollback_bot.rollbacks.lifecycle import Move, State
from rollback_bot.rollbacks.model import BOT
from rollback_bot.rollbacks.runner import reactor
from rollback_bot.rollbacks.runner.decided import decided
from rollback_bot.rollbacks.runner.held import HeldNotifier
from rollback_bot.rollbacks.runner.jobs import JobKind
from rollback_bot.rollbacks.runner.ports import Mitigate, RollbackWriter
from rollback_bot.rollbacks.runner.scheduling import JobScheduler
from rollback_bot.rollbacks.runner.trace import (
    ClusterTrace,
    approvers_in,
    change_recorder,
    check_line,
)
from rollback_bot.rollbacks.targets import GOOD, record_verdict
from rollback_bot.storage.models import Rollback
from rollback_bot.storage.repositories.rollbacks import read_rollback
from rollback_bot.storage.uow import UnitOfWork, UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind

VERIFY_POLL_SECONDS = 0.5

#: A rollback just moved to executing: its row, service, executor, approvers, and whether
#: that move also noted the first step as in flight.
Begun = tuple[Rollback, Service, Executor, tuple[str, ...], bool]


class Steps:
    def __init__(
        self,
        *,
        catalog: Catalog,
        uow: UnitOfWorkFactory,
        clock: Clock,
        executors: Callable[[str], Executor],
        gate: HealthGate,
        notifier: HeldNotifier,
        rollbacks: RollbackWriter,
        jobs: JobScheduler,
        snapshots: DbSnapshotStore | None,
        mitigate: Mitigate | None = None,
        events: EventRecorder | None = None,
        gitops: GitOpsPauser | None = None,
    ) -> None:
        self._gitops = gitops
        self._mitigate = mitigate
        self._trace = ClusterTrace(uow=uow, clock=clock, events=events)
        self._catalog = catalog
        self._uow = uow
        self._clock = clock
        self._executors = executors
        self._gate = gate
        self._notifier = notifier
        self._rollbacks = rollbacks
        self._jobs = jobs
        self._snapshots = snapshots

    # -- jobs ------------------------------------------------------------------------
    def execute(self, rollback_id: int) -> None:
        loaded = self._load(rollback_id, State.APPROVED, decided(rollback_id))
        if loaded is None:
            return
        with first_step_reads() as kept:
            self._begin(loaded, kept)

    def _begin(self, loaded: tuple[Rollback, Service, Executor], kept: dict[Any, Any]) -> None:
        """Snapshot, move to executing with it, and apply the first step at once."""
        row, service, executor = loaded
        try:
            records = executor.snapshot(service)
        except ExecutionError as exc:
            self._retry_or_give_up(row, JobKind.EXECUTE, exc)
            return

        begun: list[tuple[Rollback, tuple[str, ...]]] = []
        marks = self._marks_with_begin(row)

        def begin(r: Rollback) -> None:
            _reset_attempts(r)
            if marks:  # nothing else writes before the step: it is in flight from here
                r.applying_step = r.step

        def save(uow: UnitOfWork, r: Rollback) -> None:
            file_snapshots(uow, r.id, records, self._clock.now())
            # The first step needs the row as executing and its approvers: read them here,
            # in this transaction, instead of again before the step.
            begun.append((r, approvers_in(uow, r.id)))

        drill = "DRILL: " if row.drill else ""
        moved = self._rollbacks.system_move(
            row.id,
            Move.BEGIN,
            seen=row,  # read just now: written on, not read again (its version guards it)
            summary=f"{drill}executing {rid(row.id)}: snapshot of "
            + ", ".join(f"{r.kind}/{r.name}" for r in records),
            kind=TimelineKind.ROLLBACK_EXECUTING,
            update=begin,
            extra=save,
        )
        if moved is None:
            kept.clear()  # not begun by this job: what the snapshot read was not filed
            begun.clear()
        # The snapshot has just read the Deployment: its uid is the Event's, no second read.
        uids = {
            ("Deployment", r.name): str(r.body["metadata"]["uid"])
            for r in records
            if r.kind == "deployment" and (r.body.get("metadata") or {}).get("uid")
        }
        began = self._clock.now()

        def started(approvers: tuple[str, ...] | None) -> None:
            # Said once the first write is out, so it does not stand between the approval
            # and the write; stamped with when the rollback began, so it still comes first.
            self._notifier.release(row.id)
            cause = self._trace.cause(row, approvers)
            message = f"{rid(row.id)} started: {cause}"
            self._trace.event(row, service, STARTED, message, uids=uids, at=began)

        first: Begun | None = None
        if begun:
            executing, approvers = begun[-1]
            first = (executing, service, executor, approvers, marks)
        self._step(row.id, after_write=started, begun=first)

    def step(self, rollback_id: int) -> None:
        self._step(rollback_id)

    def _step(
        self,
        rollback_id: int,
        *,
        after_write: Callable[[tuple[str, ...] | None], None] | None = None,
        begun: Begun | None = None,
    ) -> None:
        """One step; ``after_write`` runs once, right after the step's writes (or as it ends
        without any), with the approvers when they were read. ``begun``: the row and its
        approvers as the move to executing just wrote and read them."""
        pending = [after_write] if after_write is not None else []

        def written(approvers: tuple[str, ...] | None) -> None:
            while pending:
                pending.pop()(approvers)

        try:
            self._apply_step(rollback_id, written, begun)
        finally:
            written(None)

    def _apply_step(
        self,
        rollback_id: int,
        written: Callable[[tuple[str, ...] | None], None],
        begun: Begun | None,
    ) -> None:
        if begun is None:
            loaded = self._load(rollback_id, State.EXECUTING)
            if loaded is None:
                return
            row, service, executor = loaded
            approvers = self._trace.approvers(row)  # one read for the actor and the cause
            marked = False
            interrupted = row.applying_step == row.step  # begun before a restart, not recorded
        else:
            # A pause or abort landing from here on is met as one during the step:
            # ``_record_step`` finds the move no longer legal and keeps the step where it was.
            row, service, executor, approvers, marked = begun
            interrupted = False
        actor = self._actor(row, service, approvers)
        if not self._pause_gitops(row, service, actor):
            return
        plan = Plan.from_dict(row.plan)
        if not marked:
            self._mark_applying(row, plan)
        cause = self._trace.cause(row, approvers)
        plan = replace(plan, detail={**plan.detail, "change_cause": cause})
        try:
            with self._bound(rollback_id):
                result = executor.apply_step(
                    service, plan, step=row.step, actor=actor, drill=row.drill
                )
        except ExecutionError as exc:
            written(approvers)
            self._retry_or_give_up(row, JobKind.STEP, exc)
            return
        written(approvers)
        self._tell_changes(row, result)
        self._record_step(row, service, plan, result, interrupted=interrupted)

    def last(self, rollback_id: int) -> None:
        """ "Go to 0 now": the final step, straight away, with no gate in between."""
        loaded = self._load(rollback_id, State.EXECUTING)
        if loaded is None:
            return
        row, _, _ = loaded
        last = max(len(Plan.from_dict(row.plan).steps) - 1, 0)
        if row.step != last:
            self._rollbacks.record(
                rollback_id,
                kind=TimelineKind.ROLLBACK_SKIPPED,
                summary=f"skipping to the last step ({last + 1}) of {rid(rollback_id)}",
                data={"from_step": row.step, "to_step": last},
                update=lambda r: setattr(r, "step", last),
            )
        self.step(rollback_id)

    def gate(self, rollback_id: int) -> None:
        loaded = self._load(rollback_id, State.EXECUTING)
        if loaded is None:
            return
        row, service, _ = loaded
        result = self._gate.check(service)
        deadline = row.deadline_at
        if not result.ok and result.settling and deadline and self._clock.now() < deadline:
            # The step's own scaling is still coming up (pods start in seconds on a real
            # cluster): not a failed gate yet. Look again until the health timeout.
            self._jobs.after(rollback_id, JobKind.GATE, delay=VERIFY_POLL_SECONDS)
            return
        if result.ok:
            self._rollbacks.record(
                rollback_id,
                kind=TimelineKind.HEALTH_PASSED,
                summary=f"health gate green before step {row.step + 1}",
                data={"checks": result.checks},
            )
            self.step(rollback_id)
            return
        self.pause(
            rollback_id,
            Move.GATE_FAILED,
            summary=f"health gate failed before step {row.step + 1}, {rid(rollback_id)} paused: "
            + "; ".join(result.reasons)
            + ". Resume to continue, go to 0% now, or abort.",
            kind=TimelineKind.HEALTH_FAILED,
            data={"checks": result.checks, "reasons": list(result.reasons)},
        )

    def verify(self, rollback_id: int) -> None:
        loaded = self._load(rollback_id, State.VERIFYING)
        if loaded is None:
            return
        row, service, executor = loaded
        plan = Plan.from_dict(row.plan)
        try:
            seen = executor.verify(service, plan, drill=row.drill)
        except ExecutionError as exc:
            self._retry_or_give_up(row, JobKind.VERIFY, exc)
            return
        deadline = row.deadline_at or self._clock.now()
        gate: GateResult | None = None
        if seen.done and seen.ok and not row.drill:
            gate = self._gate.check(service)
            if not gate.ok:
                seen = type(seen)(ok=False, done=False, detail="; ".join(gate.reasons))
        if seen.done and seen.ok:
            moved = self._rollbacks.system_move(
                rollback_id,
                Move.VERIFIED,
                summary=self._verified_text(row, seen.detail, gate),
                kind=TimelineKind.ROLLBACK_DONE,
                data={"checks": gate.checks if gate else {}, "rollout_healthy": True},
                extra=(lambda uow, r: self._after_verified(uow, r, plan, gate)) if gate else None,
            )
            if moved is not None:
                self._trace.event(row, service, ROLLED_BACK, f"{rid(row.id)} done: {seen.detail}")
        elif (seen.done and not seen.ok) or self._clock.now() >= deadline:
            self.fail(
                rollback_id,
                f"not healthy within {service.health.timeout_seconds:.0f} s: {seen.detail}",
                gate=gate,
            )
        else:
            self._jobs.after(rollback_id, JobKind.VERIFY, delay=VERIFY_POLL_SECONDS)

    @staticmethod
    def _verified_text(row: Rollback, detail: str, gate: GateResult | None) -> str:
        if gate is None:
            return f"{rid(row.id)} verified: {detail}" + (
                " (drill: nothing was changed)" if row.drill else ""
            )
        head = f"{rid(row.id)} rollout healthy: {detail}. {gate.checked_text()}."
        if gate.alerts_cleared:
            return head + " The service's alert checks are clear: incident mitigated."
        return head + (
            " The alerts were not checked, so the incident is NOT marked mitigated: it is "
            "when its alerts resolve, or someone declares it with `/rollback mitigated "
            + (format_incident_id(row.incident_id) if row.incident_id else "<incident>")
            + "`."
        )

    def _after_verified(self, uow: UnitOfWork, row: Rollback, plan: Plan, gate: GateResult) -> None:
        """In the "done" transaction: every check on the timeline; what the evidence proves."""
        now = self._clock.now()
        for check in gate.checks.values():
            self._note(
                uow, row, kind=TimelineKind.HEALTH_CHECK, summary=check_line(check), data=check
            )
        if not gate.alerts_cleared:
            return
        record_verdict(
            uow,
            service=row.service,
            template_hash=plan.detail.get("target_template_hash"),
            images=row.to_image,
            verdict=GOOD,
            source="verified",
            actor=BOT,
            at=now,
            incident_id=row.incident_id,
            rollback_id=row.id,
        )
        if row.incident_id and self._mitigate is not None:
            self._mitigate(
                uow,
                row.incident_id,
                at=now,
                actor=BOT,
                why=f"after {rid(row.id)} the health gate's alert checks are clear",
                data={"rollback": row.id, "checks": sorted(gate.checks)},
            )

    # -- endings that ask people ------------------------------------------------------
    def pause(
        self,
        rollback_id: int,
        move: Move,
        *,
        summary: str,
        kind: str,
        data: dict[str, Any] | None = None,
        update: Callable[[Rollback], None] | None = None,
    ) -> None:
        """Pause and ask the thread: the reason goes there word for word, not only the state."""
        decision = self._rollbacks.system_move(
            rollback_id, move, summary=summary, kind=kind, data=data, update=update
        )
        if decision is None:
            return
        with self._uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=rollback_id)
        if row is not None:
            self._notifier.progress(row, f":warning: {summary}")
            service = self._catalog.service(row.service)
            if service is not None:
                self._trace.event(row, service, PAUSED, summary, warning=True)

    def fail(self, rollback_id: int, why: str, *, gate: GateResult | None = None) -> None:
        def checks(uow: UnitOfWork, row: Rollback) -> None:
            for check in (gate.checks if gate else {}).values():
                self._note(
                    uow, row, kind=TimelineKind.HEALTH_CHECK, summary=check_line(check), data=check
                )

        moved = self._rollbacks.system_move(
            rollback_id,
            Move.FAIL,
            summary=f"{rid(rollback_id)} FAILED: {why}",
            kind=TimelineKind.ROLLBACK_FAILED,
            data={"checks": gate.checks} if gate else None,
            update=lambda r: setattr(r, "error", why),
            extra=checks if gate else None,
        )
        if moved is None:
            return
        with self._uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=rollback_id)
        service = self._catalog.service(row.service) if row else None
        if row is not None and service is not None:
            self._trace.event(
                row, service, FAILED, f"{rid(rollback_id)} failed: {why}", warning=True
            )

    # -- helpers -----------------------------------------------------------------------
    def _pause_gitops(self, row: Rollback, service: Service, actor: Actor) -> bool:
        """Before the first write: pause Argo CD / Flux when the plan says so (persisted)."""
        if self._gitops is None or row.step != 0:
            return True
        try:
            line = self._gitops.before_first_write(row, self._rollbacks, actor, service)
        except ExecutionError as exc:
            self._retry_or_give_up(row, JobKind.STEP, exc)
            return False
        if line:
            self._notifier.progress(row, line)
        return True

    def _load(
        self, rollback_id: int, state: State, known: Rollback | None = None
    ) -> tuple[Rollback, Service, Executor] | None:
        """The row (``known``: as the decision that started this job committed it), its
        service and executor; None when its state is no longer ``state``."""
        row = known if known is not None else read_rollback(self._uow.reader, id=rollback_id)
        if row is None or row.state != state:
            return None  # a late or duplicate job: the state moved on
        service = self._catalog.service(row.service)
        if service is None:
            self.fail(rollback_id, f"service {row.service} is no longer in the catalog")
            return None
        return row, service, self._executors(row.strategy)

    def _marks_with_begin(self, row: Rollback) -> bool:
        """Whether the move to executing can also note the first step as in flight.

        It can when nothing writes between the two (no GitOps owner to pause first) and
        the plan has one step (whose "executing" entry says it all; a step of several has
        its own "applying" entry). A restart in between then asks instead of re-running:
        the same answer as for a restart during the write itself.
        """
        if len((row.plan or {}).get("steps") or ()) > 1:
            return False
        found = planned_owner(row) if self._gitops is not None else None
        return found is None or not found[1]

    def _mark_applying(self, row: Rollback, plan: Plan) -> None:
        """Written before the first write, so a crash in between still leaves a trace."""
        with self._uow() as uow:
            uow.rollbacks.mark_applying(id=row.id, step=row.step)
            if len(plan.steps) > 1:  # single-step strategies: "executing" already says it
                line = plan.changes[row.step] if row.step < len(plan.changes) else ""
                self._note(
                    uow,
                    row,
                    kind=TimelineKind.ROLLBACK_APPLYING,
                    summary=f"{'DRILL: ' if row.drill else ''}applying step {row.step + 1}/"
                    f"{len(plan.steps)}" + (f": {line}" if line else ""),
                    data={"step": row.step},
                )
            uow.commit()

    def _record_step(
        self,
        row: Rollback,
        service: Service,
        plan: Plan,
        result: StepResult,
        *,
        interrupted: bool = False,
    ) -> None:
        """The step's writes and the move they make, in one transaction."""
        next_step = result.step + 1
        save_changes = change_recorder(result, self._clock.now(), interrupted=interrupted)

        def recorded(uow: UnitOfWork, r: Rollback) -> None:
            uow.rollbacks.record_step(rollback=r, next_step=next_step)
            save_changes(uow, r)

        if result.finished:
            moved = self._rollbacks.system_move(
                row.id,
                Move.APPLIED,
                summary=f"{rid(row.id)} applied ({result.message}); verifying",
                kind=TimelineKind.ROLLBACK_VERIFYING,
                update=lambda r: _set_verify_deadline(r, service, self._clock.now()),
                extra=recorded,
            )
        else:
            moved = self._rollbacks.system_move(
                row.id,
                Move.STEP_DONE,
                summary=f"{rid(row.id)} step {next_step}/{len(plan.steps)}: {result.message}",
                kind=TimelineKind.ROLLBACK_STEP,
                update=lambda r: _set_gate_deadline(r, service, self._clock.now()),
                extra=recorded,
            )
        if moved is None:
            # Someone aborted or paused while the step ran: its writes still happened, and
            # the step stays where it was (resume re-reads the cluster and re-decides it).
            with self._uow() as uow:
                fresh = uow.rollbacks.get(id=row.id)
                if fresh is not None:
                    uow.rollbacks.record_step(rollback=fresh, next_step=fresh.step)
                    save_changes(uow, fresh)
                uow.commit()

    def _retry_or_give_up(self, row: Rollback, kind: JobKind, exc: ExecutionError) -> None:
        with self._uow() as uow:
            attempts = uow.rollbacks.count_failed_attempt(id=row.id)
            self._note(
                uow,
                row,
                kind=TimelineKind.ERROR,
                summary=f"{kind.value} attempt {attempts} failed: {exc}",
                data={"retryable": exc.retryable, "attempt": attempts},
            )
            uow.commit()
        with self._uow(read_only=True) as uow:
            fresh = uow.rollbacks.get(id=row.id)
        if fresh is None:
            return
        recourse = reactor.after_failure(reactor.Progress.of(fresh), kind, retryable=exc.retryable)
        if isinstance(recourse, reactor.Schedule):
            self._jobs.after(row.id, recourse.kind, delay=recourse.delay)
        elif isinstance(recourse, reactor.PauseHalfWay):
            self.pause(
                row.id,
                Move.PAUSE,
                summary=f"{rid(row.id)} paused half-way: {exc}. Earlier steps are in "
                "place; resume to try this step again, go to 0% now, or abort.",
                kind=TimelineKind.ROLLBACK_PAUSED,
                data={"error": str(exc), "attempts": attempts},
                update=_reset_attempts,
            )
        else:
            self.fail(row.id, str(exc))

    def _note(
        self, uow: UnitOfWork, row: Rollback, *, kind: str, summary: str, data: dict[str, Any]
    ) -> None:
        """A timeline entry in the same transaction as the progress it reports."""
        uow.timeline.append(
            at=self._clock.now(),
            actor=BOT,
            kind=kind,
            summary=summary,
            incident_id=row.incident_id,
            rollback_id=row.id,
            service=row.service,
            data=data,
        )

    def _bound(self, rollback_id: int) -> contextlib.AbstractContextManager[None]:
        """Checkpoints an executor saves during the step are filed under this rollback."""
        if self._snapshots is None:
            return contextlib.nullcontext()
        return self._snapshots.bound(rollback_id)

    def _actor(self, row: Rollback, service: Service, approvers: tuple[str, ...]) -> Actor:
        """Whom the writes act as: the last approver, else the requester."""
        return self._rollbacks.actor(service, approvers[-1] if approvers else row.requested_by)

    def _tell_changes(self, row: Rollback, result: StepResult) -> None:
        """One thread reply per step, however many objects it wrote: the thread stays readable."""
        lines = [
            f"{'dry run: ' if c.dry_run else ''}{c.verb} `{c.kind}/{c.name}`: {c.summary}"
            for c in result.changes
        ]
        if result.noop or not lines:
            lines.append(result.message)
        self._notifier.progress(row, "\n".join(lines))


def _reset_attempts(row: Rollback) -> None:
    row.attempts = 0


def _set_verify_deadline(row: Rollback, service: Service, now: datetime) -> None:
    row.deadline_at = now + timedelta(seconds=service.health.timeout_seconds)


def _set_gate_deadline(row: Rollback, service: Service, now: datetime) -> None:
    """Until when the gate before the next step waits for a rollout still settling: the
    step's wait, then the service's health timeout."""
    wait = service.gradual.step_seconds if service.gradual else 0
    row.deadline_at = now + timedelta(seconds=wait + service.health.timeout_seconds)
