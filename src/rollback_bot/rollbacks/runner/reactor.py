"""What the runner does next for one rollback: decided from stored facts, pure, no I/O.

The runner is split the way kopf splits an operator: this module decides, the
rest of the runner acts. Its inputs are what the database holds (the rollback's
state, step, the step whose writes were started and not yet recorded, the failed
attempts of the current job, the kinds of job still stored) and the decision the
lifecycle just made; its output is a short list of actions. The same rules are
used after a restart and during normal running, so the two cannot drift apart,
and they are tested as a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rollback_bot.rollbacks.lifecycle import Decision, Effect, Move, State
from rollback_bot.rollbacks.runner.jobs import JobKind

#: Tries of one job (execute, a step, verify) before a retryable error is final.
RETRY_LIMIT = 3


class StoredProgress(Protocol):
    """The columns of a stored rollback that the reactor reads."""

    state: str
    step: int
    applying_step: int | None
    attempts: int


@dataclass(frozen=True)
class Progress:
    """One rollback as the database has it, plus the jobs still stored for it."""

    state: State
    step: int = 0
    applying_step: int | None = None  # a step's writes were started and not yet recorded
    attempts: int = 0  # failed attempts of the current job, this one included
    pending: frozenset[JobKind] = frozenset()
    step_seconds: float = 0.0  # gradual: the wait before each step's health gate

    @classmethod
    def of(
        cls,
        row: StoredProgress,
        *,
        pending: frozenset[JobKind] = frozenset(),
        step_seconds: float = 0.0,
    ) -> Progress:
        return cls(
            State(row.state), row.step, row.applying_step, row.attempts, pending, step_seconds
        )


# -- actions ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """Store a job of ``kind`` to run ``delay`` seconds from now."""

    kind: JobKind
    delay: float = 0.0


@dataclass(frozen=True)
class ScheduleExpiry:
    """Store the job that closes the request when its approval window ends."""


@dataclass(frozen=True)
class CancelJobs:
    """Drop the rollback's pending work and countdown (its approval deadline stays)."""


@dataclass(frozen=True)
class StartCountdown:
    """Run the countdown its whole visible length from now; ``announce``: redraw at once."""

    announce: bool


@dataclass(frozen=True)
class UpdateMessage:
    """Redraw the rollback's message and say the change of state in its thread."""


@dataclass(frozen=True)
class Announce:
    """Broadcast the outcome in the thread: the rollback has ended."""


@dataclass(frozen=True)
class PauseMidStep:
    """Pause and ask: ``step`` was being written when the bot stopped, its result unknown."""

    step: int


@dataclass(frozen=True)
class PauseHalfWay:
    """Pause and ask: a later step failed for good, the earlier ones are in place."""


@dataclass(frozen=True)
class Fail:
    """End the rollback as failed, with the error as the reason."""


#: What a decision or a restart asks for.
Action = (
    Schedule
    | ScheduleExpiry
    | CancelJobs
    | StartCountdown
    | UpdateMessage
    | Announce
    | PauseMidStep
)
#: What a failed attempt leads to.
Recourse = Schedule | PauseHalfWay | Fail


# -- decisions --------------------------------------------------------------------------
def after_decision(decision: Decision, *, step_seconds: float = 0.0) -> tuple[Action, ...]:
    """What a lifecycle decision asks of the runner, in the order it is done."""
    effects = decision.effects
    actions: list[Action] = []
    if Effect.ASK_APPROVAL in effects:
        actions.append(ScheduleExpiry())
    if Effect.CANCEL_COUNTDOWN in effects or Effect.HALT in effects:
        actions.append(CancelJobs())
    if Effect.START_COUNTDOWN in effects:
        actions.append(StartCountdown(announce=False))  # the message below shows it
    if Effect.EXECUTE in effects:
        actions.append(Schedule(JobKind.EXECUTE))
    if Effect.NEXT_STEP in effects:
        actions.append(_next_step(decision.move, step_seconds))
    if Effect.VERIFY in effects:
        actions.append(Schedule(JobKind.VERIFY))
    actions.append(UpdateMessage())
    if Effect.ANNOUNCE in effects:
        actions.append(Announce())
    return tuple(actions)


def _next_step(move: Move, step_seconds: float) -> Schedule:
    if move is Move.SKIP_TO_END:
        return Schedule(JobKind.LAST)  # "go to 0 now": no gate, no wait
    if move is Move.RESUME:
        return Schedule(JobKind.STEP)  # a person looked and said go on
    return Schedule(JobKind.GATE, step_seconds)


def after_restart(progress: Progress) -> tuple[Action, ...]:
    """What a restarted bot does for a rollback it finds active.

    Work whose job is still stored simply runs when due. Otherwise the row says
    how far it got: a step whose writes were started and not recorded is never
    repeated blindly (the bot pauses and asks), while a rollback between steps
    goes on through the health gate.
    """
    p = progress
    if p.state is State.SCHEDULED:
        # Nobody could cancel while the bot was down: the full length again.
        return (StartCountdown(announce=True),)
    if any(kind.is_work for kind in p.pending):
        return ()
    if p.state is State.APPROVED:
        return (Schedule(JobKind.EXECUTE),)
    if p.state is State.VERIFYING:
        return (Schedule(JobKind.VERIFY),)
    if p.state is not State.EXECUTING:
        return ()  # waiting for people (requested, paused) or already over
    if p.applying_step is not None:
        return (PauseMidStep(p.applying_step),)
    if p.step == 0:
        return (Schedule(JobKind.STEP),)  # begun, nothing written yet: the first step has no gate
    return (Schedule(JobKind.GATE, p.step_seconds),)


def after_failure(progress: Progress, kind: JobKind, *, retryable: bool) -> Recourse:
    """After a job's attempt failed (``progress.attempts`` counts it): retry, pause or fail."""
    if retryable and progress.attempts < RETRY_LIMIT:
        return Schedule(kind, retry_delay(progress.attempts))
    if kind is JobKind.STEP and progress.state is State.EXECUTING and progress.step > 0:
        return PauseHalfWay()
    # A single-step executor says in its message what it already wrote, if anything.
    return Fail()


def retry_delay(attempts: int) -> float:
    """Seconds before the next try: 1, 2, 4 ... after the first, second, third failure."""
    return float(2**attempts) / 2
