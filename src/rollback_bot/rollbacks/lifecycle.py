"""The rollback lifecycle: one explicit state machine, pure.

``decide`` takes the current state and a move and returns the new state plus
the effects that must follow; it performs none of them. The service layer
persists the new state and its timeline entry in one transaction, then hands
the effects to the executors. Keeping this pure means every rule about what
may happen when is in one table that tests can read exhaustively.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    REQUESTED = "requested"  # waiting for approvals
    SCHEDULED = "scheduled"  # automatic: countdown running, a human may cancel
    APPROVED = "approved"  # cleared to run; execution is about to start
    EXECUTING = "executing"
    PAUSED = "paused"
    VERIFYING = "verifying"
    DONE = "done"
    DENIED = "denied"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATES

    @property
    def is_terminal(self) -> bool:
        return not self.is_active


ACTIVE_STATES = frozenset(
    {
        State.REQUESTED,
        State.SCHEDULED,
        State.APPROVED,
        State.EXECUTING,
        State.PAUSED,
        State.VERIFYING,
    }
)


class Move(StrEnum):
    REQUEST = "request"  # a new rollback comes into being (see ``start``)
    APPROVE = "approve"
    DENY = "deny"
    COUNTDOWN_ELAPSED = "countdown_elapsed"
    RUN_NOW = "run_now"  # "Roll back now" on a countdown
    BEGIN = "begin"  # executor picked it up
    STEP_DONE = "step_done"  # gradual: one traffic step applied and gated
    GATE_FAILED = "gate_failed"
    PAUSE = "pause"
    RESUME = "resume"
    SKIP_TO_END = "skip_to_end"  # gradual, paused: "go to 0 now"
    APPLIED = "applied"  # every change made, now verify
    VERIFIED = "verified"
    FAIL = "fail"
    ABORT = "abort"


class Effect(StrEnum):
    ASK_APPROVAL = "ask_approval"
    START_COUNTDOWN = "start_countdown"
    CANCEL_COUNTDOWN = "cancel_countdown"
    EXECUTE = "execute"
    NEXT_STEP = "next_step"
    HALT = "halt"  # stop scheduled steps, ask the channel
    VERIFY = "verify"
    ANNOUNCE = "announce"  # the outcome is broadcast in the thread (the rollback ended)
    MARK_MITIGATED = "mark_mitigated"


@dataclass(frozen=True)
class Decision:
    move: Move
    before: State
    after: State
    effects: tuple[Effect, ...]


class IllegalMove(Exception):
    """A move that the current state does not allow; the message says which and why."""

    def __init__(self, move: Move, state: State, why: str) -> None:
        self.move = move
        self.state = state
        self.why = why
        super().__init__(
            f"cannot {move.value.replace('_', ' ')} a rollback that is {state.value}: {why}"
        )


S, M, E = State, Move, Effect

# (state, move) -> (next state, effects). APPROVE is special-cased in decide()
# because it only clears the request once enough distinct people approved.
TRANSITIONS: dict[tuple[State, Move], tuple[State, tuple[Effect, ...]]] = {
    (S.REQUESTED, M.APPROVE): (S.APPROVED, (E.EXECUTE,)),
    (S.REQUESTED, M.DENY): (S.DENIED, (E.ANNOUNCE,)),
    (S.REQUESTED, M.ABORT): (S.ABORTED, (E.ANNOUNCE,)),
    (S.SCHEDULED, M.COUNTDOWN_ELAPSED): (S.APPROVED, (E.EXECUTE,)),
    (S.SCHEDULED, M.RUN_NOW): (S.APPROVED, (E.CANCEL_COUNTDOWN, E.EXECUTE)),
    (S.SCHEDULED, M.ABORT): (S.ABORTED, (E.CANCEL_COUNTDOWN, E.ANNOUNCE)),
    (S.APPROVED, M.BEGIN): (S.EXECUTING, ()),
    (S.APPROVED, M.ABORT): (S.ABORTED, (E.ANNOUNCE,)),
    (S.APPROVED, M.FAIL): (S.FAILED, (E.ANNOUNCE,)),
    (S.EXECUTING, M.STEP_DONE): (S.EXECUTING, (E.NEXT_STEP,)),
    (S.EXECUTING, M.GATE_FAILED): (S.PAUSED, (E.HALT,)),
    (S.EXECUTING, M.PAUSE): (S.PAUSED, (E.HALT,)),
    (S.EXECUTING, M.APPLIED): (S.VERIFYING, (E.VERIFY,)),
    (S.EXECUTING, M.FAIL): (S.FAILED, (E.HALT, E.ANNOUNCE)),
    (S.EXECUTING, M.ABORT): (S.ABORTED, (E.HALT, E.ANNOUNCE)),
    (S.PAUSED, M.RESUME): (S.EXECUTING, (E.NEXT_STEP,)),
    (S.PAUSED, M.SKIP_TO_END): (S.EXECUTING, (E.NEXT_STEP,)),
    (S.PAUSED, M.ABORT): (S.ABORTED, (E.ANNOUNCE,)),
    (S.PAUSED, M.FAIL): (S.FAILED, (E.ANNOUNCE,)),
    (S.VERIFYING, M.VERIFIED): (S.DONE, (E.MARK_MITIGATED, E.ANNOUNCE)),
    (S.VERIFYING, M.FAIL): (S.FAILED, (E.ANNOUNCE,)),
}

_WHY_NOT: dict[State, str] = {
    S.DONE: "it already finished",
    S.DENIED: "it was denied",
    S.FAILED: "it already failed; start a new rollback",
    S.ABORTED: "it was aborted",
    S.REQUESTED: "it is still waiting for approval",
    S.SCHEDULED: "its countdown is still running",
    S.APPROVED: "it is about to start",
    S.EXECUTING: "it is running",
    S.PAUSED: "it is paused; resume or abort it",
    S.VERIFYING: "its changes are applied and being verified",
}


def initial_state(*, approvals_required: int, automatic: bool) -> tuple[State, tuple[Effect, ...]]:
    """Where a new rollback starts: a countdown, an approval request, or straight to execution."""
    if automatic:
        return S.SCHEDULED, (E.START_COUNTDOWN,)
    if approvals_required > 0:
        return S.REQUESTED, (E.ASK_APPROVAL,)
    return S.APPROVED, (E.EXECUTE,)


def start(*, approvals_required: int, automatic: bool) -> Decision:
    """The decision that creates a rollback: its first state and what must follow."""
    first, effects = initial_state(approvals_required=approvals_required, automatic=automatic)
    return Decision(M.REQUEST, first, first, effects)


def decide(
    state: State, move: Move, *, approvals_so_far: int = 0, approvals_required: int = 0
) -> Decision:
    """The pure step: the new state and the effects, or ``IllegalMove``.

    ``approvals_so_far`` counts distinct approvers *including* this move when
    the move is APPROVE.
    """
    entry = TRANSITIONS.get((state, move))
    if entry is None:
        raise IllegalMove(move, state, _WHY_NOT[state])
    after, effects = entry
    if move is M.APPROVE and approvals_so_far < approvals_required:
        return Decision(move, state, S.REQUESTED, ())
    return Decision(move, state, after, effects)


def allowed_moves(state: State) -> frozenset[Move]:
    """What may happen next from ``state`` (drives which buttons are shown)."""
    return frozenset(move for (s, move) in TRANSITIONS if s is state)
