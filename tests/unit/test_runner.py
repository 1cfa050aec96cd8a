"""The runner's decisions, with a scripted executor and the real lifecycle and database.

Jobs are run by calling ``Runner.run`` directly (the scheduler is never
started), so each test walks a rollback through exactly the jobs it names.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from rollback_bot.catalog import Service, parse_catalog
from rollback_bot.clock import SystemClock
from rollback_bot.executors.base import Plan, StepResult
from rollback_bot.executors.health import GateResult
from rollback_bot.executors.snapshot_store import DbSnapshotStore
from rollback_bot.kube.model import Actor, Change, ExecutionError, SnapshotRecord, Verification
from rollback_bot.rollbacks.lifecycle import Move
from rollback_bot.rollbacks.model import RequestSpec
from rollback_bot.rollbacks.runner import JobKind, Runner
from rollback_bot.rollbacks.runner.held import HeldNotifier
from rollback_bot.rollbacks.runner.reactor import RETRY_LIMIT
from rollback_bot.rollbacks.service import RollbackService
from rollback_bot.storage.models import Rollback
from rollback_bot.storage.repositories.rollbacks import read_rollback
from rollback_bot.storage.uow import UnitOfWorkFactory

ALICE = "U0ALICE"
STEPS = (50, 20, 5, 0)
CATALOG = parse_catalog(
    {
        "services": [
            {
                "name": "shopfront",
                "namespace": "shop",
                "deployment": "shopfront",
                "environment": "staging",
                "channel": "C0X",
                "match": {"service": "shopfront"},
                "strategy": "gradual",
                "gradual": {"stable": "shopfront", "canary": "canary", "step_seconds": 30},
                "policy": {"requesters": {"users": [ALICE]}},
            }
        ]
    }
)


class ScriptedExecutor:
    strategy = "gradual"

    def __init__(self) -> None:
        self.applied: list[int] = []
        self.fail_at: dict[int, ExecutionError] = {}
        self.during: Callable[[int], None] | None = None

    def plan(self, service: Service, *, to_revision: int | None = None) -> Plan:
        return Plan("gradual", None, None, "app:v2", "app:v1", steps=STEPS)

    def snapshot(self, service: Service) -> list[SnapshotRecord]:
        return [SnapshotRecord("deployment", "shop", "canary", None, {"spec": {}})]

    def apply_step(
        self, service: Service, plan: Plan, *, step: int, actor: Actor, drill: bool
    ) -> StepResult:
        if step in self.fail_at:
            raise self.fail_at[step]
        if self.during:
            self.during(step)
        self.applied.append(step)
        change = Change("scaled", "Deployment", "shop", "canary", f"to {STEPS[step]}%")
        return StepResult(step, step == len(STEPS) - 1, (change,), f"canary at {STEPS[step]}%")

    def verify(self, service: Service, plan: Plan, *, drill: bool) -> Verification:
        return Verification(True, True, "canary at 0%")


class Gate:
    def __init__(self) -> None:
        self.ok = True
        self.settling = False  # not ok only because the stable Deployment is scaling up

    def check(self, service: Service) -> GateResult:
        if self.settling:
            return GateResult(False, ("deployment shop/shopfront is still rolling out",), {}, True)
        return GateResult(self.ok, () if self.ok else ("1 alert(s) firing: HighErrorRate",))


class Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def rollback_changed(self, row: Rollback, decision: Any = None) -> None: ...

    def progress(self, row: Rollback, line: str) -> None:
        self.lines.append(line)

    def finished(self, row: Rollback) -> None: ...


class Nobody:
    def groups_of(self, user_id: str, candidates: Any) -> frozenset[str]:
        return frozenset()


class Harness:
    def __init__(self, engine: Engine) -> None:
        self.uow = UnitOfWorkFactory(engine)
        self.executor = ScriptedExecutor()
        self.gate = Gate()
        self.notes = Notes()
        self.runner = Runner(
            catalog=CATALOG,
            uow=self.uow,
            clock=SystemClock(),
            executors=lambda strategy: self.executor,
            gate=self.gate,  # type: ignore[arg-type]
            notifier=self.notes,
            engine=engine,
            rollbacks=lambda effects: RollbackService(
                catalog=CATALOG,
                uow=self.uow,
                clock=SystemClock(),
                directory=Nobody(),  # type: ignore[arg-type]
                planner=lambda service, spec: self.executor.plan(service),
                effects=effects,
            ),
        )
        self.rollbacks = self.runner.rollbacks

    def request(self) -> int:
        reply = self.rollbacks.request(RequestSpec(service="shopfront", user=ALICE))
        assert reply.ok and reply.rollback_id is not None, reply.text
        return reply.rollback_id

    def row(self, rollback_id: int) -> Rollback:
        with self.uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=rollback_id)
        assert row is not None
        return row

    def kinds(self, rollback_id: int) -> list[str]:
        with self.uow(read_only=True) as uow:
            return [e.kind for e in uow.timeline.list_for_rollback(rollback_id=rollback_id)]

    def jobs(self) -> set[str]:
        return {job.id for job in self.runner.jobs.scheduler.get_jobs()}


@pytest.fixture
def h(engine: Engine) -> Iterator[Harness]:
    harness = Harness(engine)
    yield harness
    harness.runner.stop()


def test_steps_wait_for_the_gate_and_the_last_one_verifies(h: Harness) -> None:
    rid = h.request()
    h.runner.run(rid, JobKind.EXECUTE)  # snapshot, begin, step 1
    assert h.row(rid).step == 1 and f"rb{rid}-gate" in h.jobs()
    for _ in range(3):
        h.runner.run(rid, JobKind.GATE)
    assert h.executor.applied == [0, 1, 2, 3]
    assert h.row(rid).state == "verifying"
    h.runner.run(rid, JobKind.VERIFY)
    assert h.row(rid).state == "done"
    kinds = h.kinds(rid)
    assert kinds.count("kube.changed") == 4 and kinds.count("health.passed") == 3
    # each write is on the timeline before the move that followed it
    assert kinds.index("kube.changed") < kinds.index("rollback.step")


def test_a_failed_gate_pauses_and_says_why_in_the_thread(h: Harness) -> None:
    rid = h.request()
    h.runner.run(rid, JobKind.EXECUTE)
    h.gate.ok = False
    h.runner.run(rid, JobKind.GATE)
    assert h.row(rid).state == "paused"
    assert h.executor.applied == [0]
    assert any("HighErrorRate" in line and "go to 0% now" in line for line in h.notes.lines)


def test_a_gate_that_sees_the_step_still_rolling_out_looks_again_instead_of_pausing(
    h: Harness,
) -> None:
    """On a real cluster the pods a step scaled up take seconds to become Ready."""
    rid = h.request()
    h.runner.run(rid, JobKind.EXECUTE)
    h.gate.settling = True
    h.runner.run(rid, JobKind.GATE)
    assert h.row(rid).state == "executing" and f"rb{rid}-gate" in h.jobs()
    assert h.executor.applied == [0] and "health.failed" not in h.kinds(rid)
    h.gate.settling = False
    h.runner.run(rid, JobKind.GATE)
    assert h.executor.applied == [0, 1] and h.kinds(rid).count("health.passed") == 1


def test_a_rollout_still_settling_past_the_health_timeout_pauses(h: Harness) -> None:
    rid = h.request()
    h.runner.run(rid, JobKind.EXECUTE)
    with h.uow() as uow:
        row = uow.rollbacks.get(id=rid)
        assert row is not None and row.deadline_at is not None  # step 1's gate waits until then
        row.deadline_at = datetime.now(UTC) - timedelta(seconds=1)
        uow.commit()
    h.gate.settling = True
    h.runner.run(rid, JobKind.GATE)
    assert h.row(rid).state == "paused" and h.executor.applied == [0]
    assert any("still rolling out" in line for line in h.notes.lines)


def test_a_step_failing_past_the_retries_pauses_a_half_done_rollback(h: Harness) -> None:
    rid = h.request()
    h.runner.run(rid, JobKind.EXECUTE)
    h.executor.fail_at[1] = ExecutionError("API server failed (HTTP 503)", retryable=True)
    for _ in range(3):
        h.runner.run(rid, JobKind.STEP)
    row = h.row(rid)
    assert row.state == "paused", h.kinds(rid)
    assert h.kinds(rid).count("error") == 3
    assert any("paused half-way" in line for line in h.notes.lines)


def test_a_first_step_that_cannot_be_applied_fails_with_the_reason(h: Harness) -> None:
    h.executor.fail_at[0] = ExecutionError("deployment shop/canary not found")
    rid = h.request()
    h.runner.run(rid, JobKind.EXECUTE)
    row = h.row(rid)
    assert row.state == "failed"
    assert row.error == "deployment shop/canary not found"
    assert h.kinds(rid)[-1] == "rollback.failed"


def test_go_to_zero_now_jumps_to_the_last_step(h: Harness) -> None:
    rid = h.request()
    h.runner.run(rid, JobKind.EXECUTE)
    h.gate.ok = False
    h.runner.run(rid, JobKind.GATE)
    reply = h.rollbacks.operate(rid, ALICE, Move.SKIP_TO_END)
    assert reply.ok, reply.text
    assert f"rb{rid}-last" in h.jobs()
    h.runner.run(rid, JobKind.LAST)
    assert h.executor.applied == [0, 3]
    assert h.row(rid).state == "verifying"
    assert "rollback.skipped" in h.kinds(rid)


def test_recovery_continues_between_steps_but_pauses_mid_step(h: Harness) -> None:
    rid = h.request()
    h.runner.run(rid, JobKind.EXECUTE)
    h.runner.jobs.scheduler.remove_all_jobs()  # as if the bot died before storing the gate job
    h.runner.recover()
    assert h.jobs() == {f"rb{rid}-gate"}  # the step was recorded: safe to go on

    h.runner.jobs.scheduler.remove_all_jobs()
    h.executor.during = lambda step: (_ for _ in ()).throw(SystemExit)  # dies mid-step
    with pytest.raises(SystemExit):
        h.runner.run(rid, JobKind.GATE)
    assert h.kinds(rid)[-1] == "rollback.applying"
    h.runner.recover()
    assert h.row(rid).state == "paused"
    assert any("paused so nothing repeats blindly" in line for line in h.notes.lines)


def test_writes_made_while_someone_aborted_are_still_recorded(h: Harness) -> None:
    rid = h.request()
    h.runner.run(rid, JobKind.EXECUTE)

    def abort_during_step_2(step: int) -> None:
        if step == 1:
            h.rollbacks.operate(rid, ALICE, Move.ABORT)

    h.executor.during = abort_during_step_2
    h.runner.run(rid, JobKind.GATE)
    assert h.row(rid).state == "aborted"
    assert h.kinds(rid).count("kube.changed") == 2  # step 1's write is on the timeline too


def test_checkpoints_saved_during_a_step_are_filed_under_its_rollback(h: Harness) -> None:
    store = DbSnapshotStore(h.uow, CATALOG)
    record = SnapshotRecord("configmap", "shop", "shopfront-config", 2, {"data": {"MODE": "a"}})
    rid = h.request()
    store.save([record])  # no step running: nothing to file it under
    with h.uow(read_only=True) as uow:
        assert uow.snapshots.list_for(rollback_id=rid) == []
    with store.bound(rid):
        store.save([record])
    found = store.configmaps_for_revision(namespace="shop", deployment="shopfront", revision=2)
    assert found == {"shopfront-config": {"data": {"MODE": "a"}}}
    assert store.configmaps_for_revision(namespace="shop", deployment="shopfront", revision=1) == {}


def test_a_retry_count_survives_a_runner_restart(h: Harness, engine: Engine) -> None:
    h.runner.jobs.start_paused()  # jobs go to the database and stay there, unrun
    rid = h.request()
    h.runner.run(rid, JobKind.EXECUTE)
    h.runner.jobs.scheduler.remove_all_jobs()  # as if they had run
    h.executor.fail_at[1] = ExecutionError("API server failed (HTTP 503)", retryable=True)
    h.runner.run(rid, JobKind.STEP)
    assert h.row(rid).attempts == 1
    h.runner.stop()

    restarted = Harness(engine)  # a new runner: nothing carried over in memory
    restarted.executor.fail_at = h.executor.fail_at
    restarted.runner.jobs.start_paused()
    try:
        restarted.runner.recover()
        assert restarted.jobs() == {f"rb{rid}-step"}  # the stored retry is left to run
        restarted.runner.run(rid, JobKind.STEP)
        assert restarted.row(rid).state == "executing"
        restarted.runner.run(rid, JobKind.STEP)
        row = restarted.row(rid)
        assert row.state == "paused", restarted.kinds(rid)
        assert restarted.kinds(rid).count("error") == RETRY_LIMIT
        assert row.attempts == 0  # given up: a resume starts a fresh count
    finally:
        restarted.runner.stop()


def test_a_step_records_that_it_is_in_flight_until_its_writes_are_recorded(h: Harness) -> None:
    rid = h.request()
    seen: list[int | None] = []
    h.executor.during = lambda step: seen.append(h.row(rid).applying_step)
    h.runner.run(rid, JobKind.EXECUTE)
    h.runner.run(rid, JobKind.GATE)
    assert seen == [0, 1]
    assert h.row(rid).applying_step is None and h.row(rid).step == 2


def test_recovery_reads_the_row_not_the_timeline(h: Harness) -> None:
    rid = h.request()
    h.runner.run(rid, JobKind.EXECUTE)
    h.runner.jobs.scheduler.remove_all_jobs()
    h.rollbacks.record(rid, kind="note", summary="a person wrote in the thread")
    h.runner.recover()
    assert h.jobs() == {f"rb{rid}-gate"}  # between steps, whatever came last on the timeline


def test_two_jobs_of_one_rollback_never_run_at_the_same_time(h: Harness) -> None:
    """A job at once and a stored one for the same rollback could be due together."""
    rid = h.request()
    h.runner.run(rid, JobKind.EXECUTE)  # step 1 applied; the gate before step 2 is next
    first_in, let_go = threading.Event(), threading.Event()
    calls: list[int] = []

    def during(step: int) -> None:
        calls.append(step)
        if len(calls) == 1:
            first_in.set()
            let_go.wait(10)

    h.executor.during = during
    first = threading.Thread(target=h.runner.run, args=(rid, JobKind.GATE))
    first.start()
    assert first_in.wait(10)
    second = threading.Thread(target=h.runner.run, args=(rid, JobKind.GATE))
    second.start()
    second.join(0.5)  # room for the second to apply the same step, if it could
    let_go.set()
    first.join(10)
    second.join(10)
    assert h.executor.applied == [0, 1, 2]  # step 2 once, then step 3 after it was recorded


def test_a_single_step_rollback_is_in_flight_from_the_move_to_executing(h: Harness) -> None:
    """One step and nothing written before it: "executing" already notes it in flight, so a
    restart before its write was recorded asks instead of writing again."""

    def one_step(service: Service, *, to_revision: int | None = None) -> Plan:
        return Plan("instant", None, None, "app:v2", "app:v1")

    h.executor.plan = one_step  # type: ignore[method-assign]
    rid = h.request()
    seen: list[tuple[int | None, str]] = []

    def dies(step: int) -> None:
        seen.append((h.row(rid).applying_step, h.kinds(rid)[-1]))
        raise SystemExit

    h.executor.during = dies
    with pytest.raises(SystemExit):
        h.runner.run(rid, JobKind.EXECUTE)
    assert seen == [(0, "rollback.executing")]
    h.runner.jobs.scheduler.remove_all_jobs()  # the execute job ran: as if it had been removed
    h.runner.recover()
    assert h.row(rid).state == "paused"
    assert any("paused so nothing repeats blindly" in line for line in h.notes.lines)


def _record_said(h: Harness) -> list[str]:
    said: list[str] = []

    def changed(row: Rollback, decision: Any = None) -> None:
        said.append(f"said {decision.after.value}" if decision else f"said {row.state}")

    h.notes.rollback_changed = changed  # type: ignore[method-assign]
    h.executor.during = lambda step: said.append(f"wrote step {step}")
    return said


def test_what_it_says_of_a_rollback_it_starts_at_once_waits_for_the_first_write(
    h: Harness,
) -> None:
    """The decision's message and the move to executing's follow the first write, in order."""
    said = _record_said(h)
    h.runner.start()  # jobs due now start at once, on the runner's threads
    rid = h.request()
    deadline = time.monotonic() + 10
    while f"rb{rid}-gate" not in h.jobs() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert said[:3] == ["wrote step 0", "said approved", "said executing"]


def test_a_decision_whose_job_is_stored_is_said_at_once(h: Harness) -> None:
    """A job left to the store (another replica leads, or none runs here) is not waited for."""
    said = _record_said(h)
    rid = h.request()  # the scheduler is not running: the execute job is stored
    assert said == ["said approved"] and f"rb{rid}-execute" in h.jobs()
    h.runner.run(rid, JobKind.EXECUTE)
    assert said[1:3] == ["said executing", "wrote step 0"]  # nothing held in a stored job


def test_held_words_are_said_in_order_and_one_failing_does_not_silence_the_rest() -> None:
    notes = Notes()
    held = HeldNotifier(notes)
    row = Rollback(id=7)
    held.hold(7)
    held.progress(row, "first")

    def fails(_row: Rollback, _decision: Any = None) -> None:
        raise RuntimeError("Slack is down")

    notes.rollback_changed = fails  # type: ignore[method-assign]
    held.rollback_changed(row)
    held.say(7, lambda: held.progress(row, "third, said while releasing"))
    held.progress(row, "second")
    held.progress(Rollback(id=8), "another rollback: not held")
    assert notes.lines == ["another rollback: not held"]
    held.release(7)
    assert notes.lines[1:] == ["first", "second", "third, said while releasing"]
    held.progress(row, "after")  # released: said at once
    assert notes.lines[-1] == "after"


def test_a_move_written_on_a_row_read_before_a_concurrent_move_is_decided_again(
    h: Harness,
) -> None:
    """``seen``: the first attempt writes on the row as read; its version refuses the write
    when someone moved the rollback in between, and the retry decides on what is stored."""
    rid = h.request()  # approved; the scheduler is not running, so nothing executes it
    stale = read_rollback(h.uow.reader, id=rid)
    assert stale is not None and stale.state == "approved"
    aborted = h.rollbacks.system_move(rid, Move.ABORT, summary=f"R-{rid} aborted meanwhile")
    assert aborted is not None
    begun = h.rollbacks.system_move(rid, Move.BEGIN, summary="executing", seen=stale)
    assert begun is None  # aborted is final: the move to executing is no longer legal
    assert h.row(rid).state == "aborted"
    assert "rollback.executing" not in h.kinds(rid)


def test_a_move_written_on_a_row_read_just_now_needs_no_second_read(h: Harness) -> None:
    rid = h.request()
    seen = read_rollback(h.uow.reader, id=rid)
    assert seen is not None
    begun = h.rollbacks.system_move(rid, Move.BEGIN, summary="executing", seen=seen)
    assert begun is not None and h.row(rid).state == "executing"
    assert h.row(rid).version == seen.version + 1
