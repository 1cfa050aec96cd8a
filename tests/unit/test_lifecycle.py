"""The lifecycle table, read exhaustively: every (state, move) pair is either a
transition or an ``IllegalMove`` that says why."""

from __future__ import annotations

import itertools

import pytest

from rollback_bot.rollbacks.lifecycle import (
    ACTIVE_STATES,
    TRANSITIONS,
    Effect,
    IllegalMove,
    Move,
    State,
    allowed_moves,
    decide,
    initial_state,
)


@pytest.mark.parametrize(("state", "move"), list(itertools.product(State, Move)))
def test_every_pair_is_a_transition_or_an_explained_refusal(state: State, move: Move) -> None:
    if (state, move) in TRANSITIONS:
        decision = decide(state, move, approvals_so_far=1, approvals_required=1)
        assert decision.before is state and decision.move is move
        assert (decision.after, decision.effects) == TRANSITIONS[(state, move)]
    else:
        with pytest.raises(IllegalMove) as raised:
            decide(state, move)
        assert raised.value.why and state.value in str(raised.value)


def test_terminal_states_allow_nothing() -> None:
    for state in State:
        assert state.is_terminal == (state not in ACTIVE_STATES)
        if state.is_terminal:
            assert allowed_moves(state) == frozenset()


def test_where_a_new_rollback_starts() -> None:
    assert initial_state(approvals_required=1, automatic=False) == (
        State.REQUESTED,
        (Effect.ASK_APPROVAL,),
    )
    assert initial_state(approvals_required=0, automatic=False) == (
        State.APPROVED,
        (Effect.EXECUTE,),
    )
    assert initial_state(approvals_required=2, automatic=True)[0] is State.SCHEDULED


def test_approval_clears_only_when_enough_people_approved() -> None:
    waiting = decide(State.REQUESTED, Move.APPROVE, approvals_so_far=1, approvals_required=2)
    assert waiting.after is State.REQUESTED and waiting.effects == ()
    cleared = decide(State.REQUESTED, Move.APPROVE, approvals_so_far=2, approvals_required=2)
    assert cleared.after is State.APPROVED and Effect.EXECUTE in cleared.effects


def test_denial_and_abort_end_a_request_and_announce_it() -> None:
    for move, after in ((Move.DENY, State.DENIED), (Move.ABORT, State.ABORTED)):
        decision = decide(State.REQUESTED, move)
        assert decision.after is after and decision.after.is_terminal
        assert Effect.ANNOUNCE in decision.effects


def test_exactly_the_moves_that_end_a_rollback_announce_it() -> None:
    for (state, move), (after, effects) in TRANSITIONS.items():
        assert (Effect.ANNOUNCE in effects) == after.is_terminal, (state, move)


def test_only_verification_marks_the_incident_mitigated() -> None:
    marking = [key for key, (_, effects) in TRANSITIONS.items() if Effect.MARK_MITIGATED in effects]
    assert marking == [(State.VERIFYING, Move.VERIFIED)]


def test_every_active_state_can_be_stopped_by_a_person() -> None:
    for state in ACTIVE_STATES - {State.VERIFYING}:
        assert Move.ABORT in allowed_moves(state) or Move.PAUSE in allowed_moves(state), state
