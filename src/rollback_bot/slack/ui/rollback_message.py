"""The rollback's own message, updated in place as it moves through its states.

One message per rollback: a header with its state, the countdown while one
runs, the facts (service, strategy, from and to), why, approvals, progress,
the diff, the outcome, and the buttons its state allows.
"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import Block

from rollback_bot.rollbacks.lifecycle import State
from rollback_bot.slack.commands import format_incident_id, format_rollback_id
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.kit import Message, actions, context, fields, header, message, section
from rollback_bot.slack.ui.limits import MAX_REASON, clip
from rollback_bot.slack.ui.mrkdwn import (
    changes_section_text,
    escape,
    format_duration,
    revision,
    warnings_text,
    when,
    who,
)
from rollback_bot.slack.ui.rollback_controls import rollback_buttons
from rollback_bot.slack.ui.rollback_wording import countdown_text, state_icon, state_words, target
from rollback_bot.slack.ui.views import RollbackView


def _title(view: RollbackView) -> str:
    drill = "🧪 DRILL · " if view.drill else ""
    kind = "Flag kill switch" if view.flag else "Rollback"
    rid = format_rollback_id(view.rollback_id)
    return (
        f"{drill}{state_icon(view.state)} {kind} {rid} · {view.service} · {state_words(view.state)}"
    )


def _text(view: RollbackView, now: datetime | None) -> str:
    """The fallback text: what notifications and screen readers say."""
    rid = format_rollback_id(view.rollback_id)
    drill = "DRILL: " if view.drill else ""
    if view.state is State.SCHEDULED and view.countdown_ends_at and now:
        head = f"{drill}{rid}: {countdown_text(view, now=now)}"
    else:
        head = (
            f"{drill}Rollback {rid} of {view.service} ({view.environment}) "
            f"to {target(view)}: {state_words(view.state)}"
        )
    if view.state is State.REQUESTED and view.approvals_required:
        head += f" ({len(view.approvers)} of {view.approvals_required} approvals)"
    if view.incident_id:
        head += f". {format_incident_id(view.incident_id)}"
    # Notifications read mentions in the fallback text: nothing in it is markup.
    return escape(head + ".")


def _countdown(view: RollbackView, now: datetime | None) -> Block | None:
    if view.state is not State.SCHEDULED or not view.countdown_ends_at:
        return None
    line = (
        countdown_text(view, now=now)
        if now
        else f"Automatic rollback of {view.service} to {target(view)}"
    )
    return section(f"⏳ *{escape(line, 1000)}* (at {when(view.countdown_ends_at)})")


def _facts(view: RollbackView) -> Block:
    to = escape(target(view)) if view.flag else revision(view.to_revision, view.to_image)
    pairs = [
        ("Service", escape(f"{view.service} ({view.environment})")),
        ("Strategy", escape(view.strategy)),
        ("From", revision(view.from_revision, view.from_image)),
        ("To", to),
        ("Requested by", "automation" if view.automatic else who(view.requested_by)),
    ]
    if view.incident_id:
        pairs.append(("Incident", format_incident_id(view.incident_id)))
    return fields(pairs)


def _approvals(view: RollbackView) -> str | None:
    if view.approvals_required <= 0:
        return None
    got = len(view.approvers)
    by = f" ({', '.join(who(a) for a in view.approvers)})" if view.approvers else ""
    line = f"*Approvals:* {got} of {view.approvals_required}{by}"
    if view.state is State.REQUESTED and view.may_approve:
        line += f". May approve: {view.may_approve} (not the requester)"
    return line


def _about(view: RollbackView) -> str | None:
    """Why it runs and who has approved, in one section."""
    about = []
    if view.trigger:
        about.append(f"*Trigger:* {escape(clip(view.trigger, 500))}")
    if view.reason:
        about.append(f"*Reason:* {escape(clip(view.reason, MAX_REASON))}")
    approvals = _approvals(view)
    if approvals:
        about.append(approvals)
    return "\n".join(about) or None


def _progress(view: RollbackView) -> str | None:
    if view.step is None or not view.steps:
        return None
    done = max(min(view.step, view.steps), 0)
    bar = "▰" * done + "▱" * (view.steps - done)
    canary = f" · canary at {view.canary_percent}%" if view.canary_percent is not None else ""
    return f"{bar} Step {view.step} of {view.steps}{canary}"


def _outcome(view: RollbackView) -> list[Block]:
    """How it ended: denied by whom and why, the error, how long it took."""
    out: list[Block] = []
    if view.state is State.DENIED and view.denied_by:
        why = f": {escape(clip(view.deny_reason, MAX_REASON))}" if view.deny_reason else ""
        out.append(section(f"🚫 Denied by {who(view.denied_by)}{why}"))
    if view.error:
        out.append(section(f"❌ *Error:* {escape(clip(view.error, 2500))}"))
    if view.finished_at and view.started_at:
        took = format_duration(view.finished_at - view.started_at)
        out.append(context(f"Took {took} · finished {when(view.finished_at)}"))
    return out


def rollback_message(view: RollbackView, *, now: datetime | None = None) -> Message:
    """The rollback's message: fallback text and blocks.

    ``now`` turns a countdown's end into "in 60 s"; without it only the end time shows.
    """
    blocks: list[Block] = [header(_title(view))]
    if view.drill:
        blocks.append(context("🧪 *Drill*: server-side dry run, nothing is changed."))
    countdown = _countdown(view, now)
    if countdown is not None:
        blocks.append(countdown)
    blocks.append(_facts(view))
    texts = [
        _about(view),
        _progress(view),
        changes_section_text(view.changes) if view.changes else None,
        warnings_text(view.warnings) if view.warnings else None,
    ]
    blocks.extend(section(text) for text in texts if text)
    blocks.extend(_outcome(view))
    buttons = rollback_buttons(view)
    blocks.extend(actions(f"{action_ids.ROLLBACK_BLOCK}.{view.rollback_id}", buttons))
    return message(_text(view, now), blocks)
