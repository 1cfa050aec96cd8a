"""View models: exactly what a Slack message or modal shows, as plain frozen data.

The service layer decides (from the database, the lifecycle and the policy)
and fills these; the builders (one module per surface in ``rollback_bot.slack.ui``)
only lay them out. Keeping decisions out of the builders is what lets the
blocks be tested as data and lets the same view be rendered again when a
message is updated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from rollback_bot.rollbacks.lifecycle import Move, State
from rollback_bot.slack.ui import action_ids


@dataclass(frozen=True)
class Change:
    """One difference between the running and the target revision (image, env, ConfigMap key).

    ``before`` None means the target adds it; ``after`` None means the target removes it.
    """

    what: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class AlertGroupView:
    group_id: int
    alertname: str
    severity: str
    status: Literal["firing", "resolved"]
    firing_count: int
    total_count: int
    first_seen: datetime
    last_seen: datetime
    incident_id: int | None = None
    service: str | None = None  # None: matched no catalog service (fallback channel)
    environment: str | None = None
    cluster: str | None = None
    resolved_after: timedelta | None = None
    summary: str | None = None
    description: str | None = None
    runbook_url: str | None = None
    dashboard_url: str | None = None
    panel_url: str | None = None
    silence_url: str | None = None
    generator_url: str | None = None
    current_revision: int | None = None
    current_image: str | None = None
    stable_revision: int | None = None
    stable_image: str | None = None
    can_roll_back: bool = False
    can_silence: bool = False
    silenced_until: datetime | None = None
    # The incident's latest rollback, as the card tells it (who, what, which step, result)
    rollback_line: str | None = None
    incident_line: str | None = None  # "INC-1 mitigated at ..." once it is
    can_export: bool = False


@dataclass(frozen=True)
class RollbackView:
    rollback_id: int
    service: str
    environment: str
    strategy: str  # instant | blue-green | gradual | flag
    state: State
    requested_by: str  # a Slack user id, or a word such as "automation"
    incident_id: int | None = None
    reason: str | None = None
    from_revision: int | None = None
    from_image: str | None = None
    to_revision: int | None = None
    to_image: str | None = None
    approvers: tuple[str, ...] = ()  # user ids that approved so far
    approvals_required: int = 0
    may_approve: str | None = None  # who may approve, as Slack text
    changes: tuple[Change, ...] = ()
    warnings: tuple[str, ...] = ()
    step: int | None = None  # 1-based step being applied (gradual)
    steps: int | None = None
    canary_percent: int | None = None
    drill: bool = False
    automatic: bool = False
    trigger: str | None = None  # the rule that started an automatic rollback
    countdown_ends_at: datetime | None = None
    error: str | None = None
    denied_by: str | None = None
    deny_reason: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    flag: str | None = None  # the flag turned off, for a kill-switch change
    gitops_paused: str | None = None  # "Flux Kustomization x/y": paused by it, not resumed
    # Buttons to show, as action ids, in order; see ``actions_for``.
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestPreview:
    """What the confirmation modal shows before anything changes."""

    service: str
    environment: str
    strategy: str
    current_revision: int | None
    current_image: str | None
    target_revision: int | None
    target_image: str | None
    private_metadata: str  # opaque to the builder; the submit listener reads it back
    changes: tuple[Change, ...] = ()
    warnings: tuple[str, ...] = ()  # GitOps-managed, fewer than 3 revisions kept, ...
    approvals_required: int = 0
    must_approve: str | None = None  # who must approve, as Slack text
    drill: bool = False
    reason: str | None = None  # prefilled from `--reason`
    target_stable: bool = False
    target_known: str | None = None  # what is known about the target, in words
    known_bad: str | None = None  # set: the target is known bad; the override is required


_MOVE_ACTIONS: tuple[tuple[Move, str], ...] = (
    (Move.APPROVE, action_ids.APPROVE),
    (Move.DENY, action_ids.DENY),
    (Move.RUN_NOW, action_ids.RUN_NOW),
    (Move.PAUSE, action_ids.PAUSE),
    (Move.RESUME, action_ids.RESUME),
    (Move.SKIP_TO_END, action_ids.SKIP_TO_END),
    (Move.ABORT, action_ids.ABORT),
)


def actions_for(
    state: State,
    moves: Iterable[Move],
    *,
    flag: bool = False,
    incident: bool = False,
    gitops_paused: bool = False,
) -> tuple[str, ...]:
    """The buttons for a rollback in ``state`` given the moves the caller allows.

    ``moves`` is normally ``lifecycle.allowed_moves(state)`` narrowed by
    policy (automation off: no pause). On a countdown, aborting reads as
    "Cancel"; a finished flag change offers "Undo"; a finished rollback offers
    the postmortem export when it belongs to an incident.
    """
    allowed = set(moves)
    out = [
        action
        for move, action in _MOVE_ACTIONS
        if move in allowed and not (move is Move.ABORT and state is State.SCHEDULED)
    ]
    if state is State.SCHEDULED and Move.ABORT in allowed:
        out.append(action_ids.CANCEL_COUNTDOWN)
    if gitops_paused:  # whatever the state: the pause outlives the rollback
        out.append(action_ids.RESUME_GITOPS)
    if state.is_terminal:
        if flag and state is State.DONE:
            out.append(action_ids.UNDO_FLAG)
        if incident:
            out.append(action_ids.EXPORT)
    return tuple(out)
