"""The one-line replies in a rollback's thread: each step, and the summary when it ends.

The summary is also broadcast to the channel, so it must read on its own:
who asked, who approved, where it went and how long it took.
"""

from __future__ import annotations

from rollback_bot.rollbacks.lifecycle import State
from rollback_bot.slack.commands import format_incident_id, format_rollback_id
from rollback_bot.slack.ui.limits import MAX_TEXT, clip
from rollback_bot.slack.ui.mrkdwn import clip_escaped, escape, format_duration, revision, who
from rollback_bot.slack.ui.rollback_wording import state_icon, state_words, target
from rollback_bot.slack.ui.views import RollbackView

#: The changes of state ``transition_line`` speaks of; every other one it leaves silent.
SPOKEN = frozenset(
    {
        (State.REQUESTED, State.APPROVED),
        (State.SCHEDULED, State.APPROVED),
        (State.PAUSED, State.EXECUTING),
        *((before, State.PAUSED) for before in State if before is not State.PAUSED),
    }
)


def speaks(before: State, after: State) -> bool:
    """Whether ``transition_line`` has a line for this change (so its view is worth reading)."""
    return (before, after) in SPOKEN


def transition_line(view: RollbackView, before: State, after: State) -> str | None:
    """What the thread says when a rollback changes state, as a person would say it; or
    nothing, when the message above, a step line or the closing summary already tells it.

    A 0-second instant rollback reads as two replies: who approved and what happens,
    then the result (``summary_line``), not one reply per state.
    """
    if not speaks(before, after):
        return None
    drill = "🧪 DRILL: " if view.drill else ""
    service = escape(view.service, 200)
    to = escape(target(view)) if view.flag else revision(view.to_revision, view.to_image)
    if after is State.APPROVED and before is State.REQUESTED:
        by = ", ".join(who(a) for a in view.approvers) or "Approval"
        return f"{drill}✅ {by} approved; rolling back {service} to {to}."
    if after is State.APPROVED and before is State.SCHEDULED:
        return f"{drill}⏱️ Nobody cancelled: rolling back {service} to {to} now."
    if after is State.PAUSED:
        where = f" at step {view.step} of {view.steps}" if view.step and view.steps else ""
        return f"{drill}⏸️ Rollback of {service} paused{where}: Resume or Abort on the message."
    if after is State.EXECUTING and before is State.PAUSED:
        return f"{drill}▶️ Resumed: rolling back {service} to {to}."
    return None


def _ended(view: RollbackView, head: str, where: str, took: str) -> str:
    """The summary's first clause, by how the rollback ended."""
    if view.state is State.DONE:
        to = escape(target(view)) if view.flag else revision(view.to_revision, view.to_image)
        done = "kill switch applied" if view.flag else "rolled back"
        line = f"{head}{escape(where)} {done} to {to}{took}"
        by = "automation" if view.automatic else who(view.requested_by)
        line += f". Requested by {by}"
        if view.approvers:
            line += f", approved by {', '.join(who(a) for a in view.approvers)}"
        return line
    if view.state is State.DENIED:
        line = f"{head}rollback of {escape(where)} denied"
        if view.denied_by:
            line += f" by {who(view.denied_by)}"
        if view.deny_reason:
            line += f": {escape(clip(view.deny_reason, 500))}"
        return line
    if view.state is State.FAILED:
        line = f"{head}rollback of {escape(where)} to {escape(target(view))} failed{took}"
        if view.error:
            line += f": {escape(clip(view.error, 500))}"
        return line
    to = escape(target(view))
    return f"{head}rollback of {escape(where)} to {to} {state_words(view.state)}"


def summary_line(view: RollbackView) -> str:
    """The one line posted to the channel when a rollback ends."""
    drill = "🧪 DRILL (dry run, nothing changed): " if view.drill else ""
    head = f"{state_icon(view.state)} {drill}{format_rollback_id(view.rollback_id)}: "
    took = (
        f" in {format_duration(view.finished_at - view.started_at)}"
        if view.finished_at and view.started_at
        else ""
    )
    line = _ended(view, head, f"{view.service} ({view.environment})", took)
    if view.incident_id:
        line += f". {format_incident_id(view.incident_id)}"
    return clip_escaped(line + ".", MAX_TEXT)
