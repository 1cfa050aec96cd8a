"""The words every surface uses for a rollback: its state, where it goes, its countdown.

The rollback message, its thread lines, its buttons and ``/rollback status``
all name a state or a target; they read it from here so they never disagree.
"""

from __future__ import annotations

import math
from datetime import datetime

from rollback_bot.rollbacks.lifecycle import State
from rollback_bot.slack.ui.views import RollbackView

_STATE_LABEL: dict[State, tuple[str, str]] = {
    State.REQUESTED: ("✋", "awaiting approval"),
    State.SCHEDULED: ("⏳", "automatic rollback scheduled"),
    State.APPROVED: ("▶️", "approved, starting"),
    State.EXECUTING: ("🔄", "rolling back"),
    State.PAUSED: ("⏸️", "paused"),
    State.VERIFYING: ("🔎", "verifying"),
    State.DONE: ("✅", "done"),
    State.DENIED: ("🚫", "denied"),
    State.FAILED: ("❌", "failed"),
    State.ABORTED: ("⏹️", "aborted"),
}


def state_icon(state: State) -> str:
    return _STATE_LABEL[state][0]


def state_words(state: State) -> str:
    """``awaiting approval``, ``rolling back``, ...: the state as a person says it."""
    return _STATE_LABEL[state][1]


def state_label(state: State) -> str:
    """Icon and words: ``🔄 rolling back``."""
    return f"{state_icon(state)} {state_words(state)}"


def target(view: RollbackView) -> str:
    """Where the rollback goes: ``revision 41``, ``flag new-pricing off``, ..."""
    if view.flag:
        return f"flag {view.flag} off"
    if view.to_revision is not None:
        return f"revision {view.to_revision}"
    return "the last stable revision"


def countdown_text(view: RollbackView, *, now: datetime) -> str:
    """``Automatic rollback of checkout to revision 41 in 60 s``."""
    ends = view.countdown_ends_at or now
    seconds = max(math.ceil((ends - now).total_seconds()), 0)
    return f"Automatic rollback of {view.service} to {target(view)} in {seconds} s"
