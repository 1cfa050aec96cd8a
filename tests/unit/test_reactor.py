"""The reactor as a table: stored facts in, the runner's next actions out."""

from __future__ import annotations

import pytest

from rollback_bot.rollbacks.lifecycle import TRANSITIONS, Decision, Move, State, decide, start
from rollback_bot.rollbacks.runner.jobs import JobKind
from rollback_bot.rollbacks.runner.reactor import (
    RETRY_LIMIT,
    Action,
    Announce,
    CancelJobs,
    Fail,
    PauseHalfWay,
    PauseMidStep,
    Progress,
    Recourse,
    Schedule,
    ScheduleExpiry,
    StartCountdown,
    UpdateMessage,
    after_decision,
    after_failure,
    after_restart,
)

S, K = State, JobKind
GATE_WAIT = 30.0

RESTART_CASES: list[tuple[str, Progress, tuple[Action, ...]]] = [
    (
        "a countdown runs its whole length again, whatever is stored",
        Progress(S.SCHEDULED, pending=frozenset({K.COUNTDOWN, K.REFRESH})),
        (StartCountdown(announce=True),),
    ),
    (
        "stored work runs when due",
        Progress(S.EXECUTING, step=2, pending=frozenset({K.GATE})),
        (),
    ),
    (
        "a stored retry of a half-applied step is left to run",
        Progress(S.EXECUTING, step=2, applying_step=2, attempts=1, pending=frozenset({K.STEP})),
        (),
    ),
    (
        "approved and nothing stored: execute",
        Progress(S.APPROVED),
        (Schedule(K.EXECUTE),),
    ),
    (
        "approved with only its approval deadline stored: still execute",
        Progress(S.APPROVED, pending=frozenset({K.EXPIRE})),
        (Schedule(K.EXECUTE),),
    ),
    (
        "verifying: verify again",
        Progress(S.VERIFYING, step=4),
        (Schedule(K.VERIFY),),
    ),
    (
        "between steps: the gate, after the step's full wait",
        Progress(S.EXECUTING, step=2, step_seconds=GATE_WAIT),
        (Schedule(K.GATE, GATE_WAIT),),
    ),
    (
        "begun and nothing written: the first step, which has no gate",
        Progress(S.EXECUTING, step=0, step_seconds=GATE_WAIT),
        (Schedule(K.STEP),),
    ),
    (
        "a step's writes in flight: pause and ask",
        Progress(S.EXECUTING, step=3, applying_step=3),
        (PauseMidStep(3),),
    ),
    (
        "the first step in flight: pause too",
        Progress(S.EXECUTING, step=0, applying_step=0),
        (PauseMidStep(0),),
    ),
    ("a request waits for people", Progress(S.REQUESTED, pending=frozenset({K.EXPIRE})), ()),
    ("a paused rollback waits for people", Progress(S.PAUSED, step=2, applying_step=2), ()),
    ("an ended rollback is left alone", Progress(S.DONE, step=4), ()),
]


@pytest.mark.parametrize(
    ("progress", "expected"),
    [case[1:] for case in RESTART_CASES],
    ids=[case[0] for case in RESTART_CASES],
)
def test_after_restart(progress: Progress, expected: tuple[Action, ...]) -> None:
    assert after_restart(progress) == expected


DECISION_CASES: list[tuple[str, Decision, tuple[Action, ...]]] = [
    (
        "a request that needs approval waits with a deadline",
        start(approvals_required=1, automatic=False),
        (ScheduleExpiry(), UpdateMessage()),
    ),
    (
        "an automatic rollback starts its countdown",
        start(approvals_required=1, automatic=True),
        (StartCountdown(announce=False), UpdateMessage()),
    ),
    (
        "run now cancels the countdown, then executes",
        decide(S.SCHEDULED, Move.RUN_NOW),
        (CancelJobs(), Schedule(K.EXECUTE), UpdateMessage()),
    ),
    (
        "a recorded step waits for the gate",
        decide(S.EXECUTING, Move.STEP_DONE),
        (Schedule(K.GATE, GATE_WAIT), UpdateMessage()),
    ),
    (
        "resume applies the step now",
        decide(S.PAUSED, Move.RESUME),
        (Schedule(K.STEP), UpdateMessage()),
    ),
    (
        "go to 0 now jumps to the last step",
        decide(S.PAUSED, Move.SKIP_TO_END),
        (Schedule(K.LAST), UpdateMessage()),
    ),
    (
        "applied: verify",
        decide(S.EXECUTING, Move.APPLIED),
        (Schedule(K.VERIFY), UpdateMessage()),
    ),
    (
        "a failed gate halts and asks",
        decide(S.EXECUTING, Move.GATE_FAILED),
        (CancelJobs(), UpdateMessage()),
    ),
    (
        "an abort mid-run halts, then announces the end",
        decide(S.EXECUTING, Move.ABORT),
        (CancelJobs(), UpdateMessage(), Announce()),
    ),
    (
        "verified: the outcome is announced",
        decide(S.VERIFYING, Move.VERIFIED),
        (UpdateMessage(), Announce()),
    ),
    (
        "an approval short of the quorum only redraws",
        decide(S.REQUESTED, Move.APPROVE, approvals_so_far=1, approvals_required=2),
        (UpdateMessage(),),
    ),
]


@pytest.mark.parametrize(
    ("decision", "expected"),
    [case[1:] for case in DECISION_CASES],
    ids=[case[0] for case in DECISION_CASES],
)
def test_after_decision(decision: Decision, expected: tuple[Action, ...]) -> None:
    assert after_decision(decision, step_seconds=GATE_WAIT) == expected


def test_every_decision_that_ends_a_rollback_announces_it_and_no_other() -> None:
    for (state, move), (after, _) in TRANSITIONS.items():
        actions = after_decision(decide(state, move))
        assert (Announce() in actions) == after.is_terminal, (state, move)
        assert actions[-1] == (Announce() if after.is_terminal else UpdateMessage())


FAILURE_CASES: list[tuple[str, Progress, JobKind, bool, Recourse]] = [
    ("a first retryable failure retries after 1 s", Progress(S.APPROVED, attempts=1),
     K.EXECUTE, True, Schedule(K.EXECUTE, 1.0)),
    ("the second after 2 s", Progress(S.VERIFYING, step=1, attempts=2),
     K.VERIFY, True, Schedule(K.VERIFY, 2.0)),
    ("out of tries on a later step: pause half-way", Progress(S.EXECUTING, step=1,
     attempts=RETRY_LIMIT), K.STEP, True, PauseHalfWay()),
    ("a final error on a later step: pause half-way", Progress(S.EXECUTING, step=2,
     attempts=1), K.STEP, False, PauseHalfWay()),
    ("a final error on the first step: fail", Progress(S.EXECUTING, step=0, attempts=1),
     K.STEP, False, Fail()),
    ("out of tries taking the snapshot: fail", Progress(S.APPROVED, attempts=RETRY_LIMIT),
     K.EXECUTE, True, Fail()),
    ("out of tries verifying: fail", Progress(S.VERIFYING, step=1, attempts=RETRY_LIMIT),
     K.VERIFY, True, Fail()),
    ("paused by a person meanwhile: no half-way pause, it fails", Progress(S.PAUSED, step=2,
     attempts=RETRY_LIMIT), K.STEP, True, Fail()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("progress", "kind", "retryable", "expected"),
    [case[1:] for case in FAILURE_CASES],
    ids=[case[0] for case in FAILURE_CASES],
)
def test_after_failure(
    progress: Progress, kind: JobKind, retryable: bool, expected: Recourse
) -> None:
    assert after_failure(progress, kind, retryable=retryable) == expected
