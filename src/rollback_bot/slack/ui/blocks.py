"""Block Kit builders: pure functions from view models to Slack payloads.

Each builder returns plain dicts and lists (and, for messages, the fallback
``text`` that notifications and screen readers show), so tests can assert on
them as data and the listeners only send them. Slack's size limits are applied
here, in one place: long lists end in "…and N more" instead of a rejected
message in the middle of an incident.

Confirmation policy: a button that changes something immediately carries a
Block Kit ``confirm`` dialog (Abort, Roll back now, Undo flag change). A
button that only opens a modal does not (Roll back, Deny): the modal itself is
the confirmation, with the diff or the required reason, and stacking a dialog
in front of it would add a click without adding information.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from rollback_bot.ids import format_incident_id, format_rollback_id
from rollback_bot.incidents.queries import RevisionRow, StatusRow
from rollback_bot.rollbacks.lifecycle import State
from rollback_bot.slack.commands import HELP_TEXT, VERBS, CommandError
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.views import AlertGroupView, Change, RequestPreview, RollbackView

Block = dict[str, Any]

# Slack's documented limits.
MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_TEXT = 3000  # section / context mrkdwn text
MAX_FIELD = 2000  # one section field
MAX_HEADER = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTIONS = 25
MAX_MODAL_TITLE = 24
MAX_METADATA = 3000
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30
MAX_REASON = 1000


# --- text helpers --------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in "…" when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


# User and group mentions survive escaping; everything else from people is literal.
_MENTION = re.compile(r"(<(?:@[UW]|#C|!subteam\^)[A-Za-z0-9|._\-^ ]*>)")


def escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` for mrkdwn, keeping user, channel and group mentions."""
    parts = _MENTION.split(text)
    return "".join(
        part if i % 2 else part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        for i, part in enumerate(parts)
    )


def _code(text: str, limit: int = 200) -> str:
    # A backtick inside would end the code span early.
    inner = escape(clip(text.replace("`", "'"), limit))
    return f"`{inner}`"


def _who(user: str) -> str:
    return f"<@{user}>" if re.fullmatch(r"[UW][A-Z0-9]{2,}", user) else escape(user)


def _url(url: str) -> str:
    # A link's URL must not break out of Slack's <url|label> markup.
    return url.replace(" ", "%20").replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")


def format_duration(span: timedelta | float) -> str:
    """``45 s``, ``3m 12s``, ``2h 5m``, ``4d 3h``: short enough for one line."""
    seconds = int(span.total_seconds() if isinstance(span, timedelta) else span)
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, mins = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {mins}m"
    days, hrs = divmod(hours, 24)
    return f"{days}d {hrs}h"


def _when(moment: datetime) -> str:
    """A timestamp each reader sees in their own time zone."""
    fallback = moment.strftime("%Y-%m-%d %H:%M:%S UTC" if moment.tzinfo else "%Y-%m-%d %H:%M:%S")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def _revision(number: int | None, image: str | None) -> str:
    if number is None and image is None:
        return "unknown"
    head = f"revision {number}" if number is not None else "revision ?"
    return f"{head} {_code(image)}" if image else head


def _bounded_lines(lines: Sequence[str], limit: int = MAX_TEXT, header: str = "") -> str:
    """Join ``lines`` under ``header`` within ``limit``, ending in "…and N more" if cut."""
    out = [header] if header else []
    for i, line in enumerate(lines):
        rest = len(lines) - i - 1
        tail = [f"…and {rest} more"] if rest else []
        # Each accepted line leaves room for the "…and N more" that may follow it.
        if len("\n".join([*out, line, *tail])) > limit:
            return "\n".join([*out, f"…and {len(lines) - i} more"])
        out.append(line)
    return "\n".join(out)


def _change_line(change: Change) -> str:
    if change.before is None and change.after is None:
        # A change described in words only (e.g. "Service selector slot: blue -> green").
        return f"• {escape(clip(change.what, 500))}"
    what = f"*{escape(clip(change.what, 200))}*"
    if change.before is None and change.after is not None:
        return f"• {what}: added {_code(change.after)}"
    if change.after is None and change.before is not None:
        return f"• {what}: removed (was {_code(change.before)})"
    return f"• {what}: {_code(change.before or '')} → {_code(change.after or '')}"


# --- block helpers ---------------------------------------------------------------


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def _mrkdwn(text: str, limit: int = MAX_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, limit)}


def _header(text: str) -> Block:
    return {"type": "header", "text": _plain(text, MAX_HEADER)}


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text)}


def _fields(pairs: Sequence[tuple[str, str]]) -> Block:
    fields = [_mrkdwn(f"*{label}*\n{value}", MAX_FIELD) for label, value in pairs[:10]]
    return {"type": "section", "fields": fields}


def _context(*texts: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(t) for t in texts[:10]]}


def button_value(**ids: int | str | None) -> str:
    """The ``value`` of a button: its ids as compact JSON (None entries dropped)."""
    value = json.dumps(
        {k: v for k, v in ids.items() if v is not None}, separators=(",", ":"), sort_keys=True
    )
    if len(value) > MAX_BUTTON_VALUE:
        raise ValueError(f"button value longer than {MAX_BUTTON_VALUE} characters")
    return value


def read_button_value(value: str) -> dict[str, Any]:
    """The ids a button carried; ``ValueError`` when the value is not one of ours."""
    try:
        data = json.loads(value)
    except (TypeError, json.JSONDecodeError):
        raise ValueError(f"not a button value: {value[:50]!r}") from None
    if not isinstance(data, dict):
        raise ValueError(f"not a button value: {value[:50]!r}")
    return data


def _confirm(title: str, text: str, confirm: str) -> dict[str, Any]:
    return {
        "title": _plain(title, MAX_CONFIRM_TITLE),
        "text": _mrkdwn(text, MAX_CONFIRM_TEXT),
        "confirm": _plain(confirm, MAX_CONFIRM_BUTTON),
        "deny": _plain("Go back", MAX_CONFIRM_BUTTON),
        "style": "danger",
    }


def _button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": _plain(text, MAX_BUTTON_TEXT),
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


def _actions(block_id: str, buttons: Sequence[dict[str, Any]]) -> list[Block]:
    """Buttons in action blocks of at most 25 elements each (none when empty)."""
    return [
        {"type": "actions", "block_id": f"{block_id}.{i // MAX_ACTIONS}", "elements": list(chunk)}
        for i, chunk in (
            (i, buttons[i : i + MAX_ACTIONS]) for i in range(0, len(buttons), MAX_ACTIONS)
        )
    ]


def _fit(blocks: list[Block], limit: int = MAX_MESSAGE_BLOCKS) -> list[Block]:
    """At most ``limit`` blocks; action blocks are kept because they are the point."""
    if len(blocks) <= limit:
        return blocks
    actions = [b for b in blocks if b["type"] == "actions"]
    others = [b for b in blocks if b["type"] != "actions"]
    room = limit - len(actions) - 1
    dropped = len(others) - room
    return [*others[:room], _context(f"…and {dropped} more"), *actions]


# --- alerts ---------------------------------------------------------------------

_SEVERITY_ICON = {"critical": "🔴", "error": "🔴", "warning": "🟠", "info": "🔵"}


def _where(service: str | None, environment: str | None) -> str:
    if service is None:
        return "no catalog service"
    return f"{service} ({environment})" if environment else service


def alert_message(view: AlertGroupView) -> tuple[str, list[Block]]:
    """The alert group's message: what fires, where, what runs, and the way out."""
    where = _where(view.service, view.environment)
    incident = f" {format_incident_id(view.incident_id)}." if view.incident_id else ""
    if view.status == "resolved":
        lasted = f" after {format_duration(view.resolved_after)}" if view.resolved_after else ""
        title = f"✅ RESOLVED · {view.alertname} · {where}"
        text = f"✅ RESOLVED: {view.alertname} on {where}{lasted}.{incident}"
    else:
        icon = _SEVERITY_ICON.get(view.severity.lower(), "⚪")
        title = f"{icon} FIRING · {view.alertname} · {where}"
        text = (
            f"{icon} FIRING: {view.alertname} on {where}, {view.severity}, "
            f"{view.firing_count} of {view.total_count} firing.{incident}"
        )

    blocks: list[Block] = [_header(title)]
    about = []
    if view.summary:
        about.append(f"*{escape(clip(view.summary, 500))}*")
    if view.description:
        about.append(escape(clip(view.description, 2000)))
    if about:
        blocks.append(_section("\n".join(about)))

    fields = [
        ("Service", escape(where)),
        ("Severity", escape(view.severity)),
        ("Alerts", f"{view.firing_count} of {view.total_count} firing"),
        ("First seen", _when(view.first_seen)),
    ]
    if view.cluster:
        fields.insert(1, ("Cluster", escape(view.cluster)))
    if view.status == "resolved":
        lasted = format_duration(view.resolved_after) if view.resolved_after else "unknown"
        fields.append(("Lasted", lasted))
    else:
        fields.append(("Last seen", _when(view.last_seen)))
    blocks.append(_fields(fields))

    if view.service is not None:
        stable = (
            f"Last stable: {_revision(view.stable_revision, view.stable_image)}"
            if view.stable_revision is not None or view.stable_image
            else "No stable revision known"
        )
        running = f"Running: {_revision(view.current_revision, view.current_image)}"
        blocks.append(_context(running, stable))

    links = [
        (label, url)
        for label, url in (
            ("Runbook", view.runbook_url),
            ("Dashboard", view.dashboard_url),
            ("Panel", view.panel_url),
            ("Silence", view.silence_url),
            ("Source", view.generator_url),
        )
        if url
    ]
    notes = [" · ".join(f"<{_url(url)}|{label}>" for label, url in links)] if links else []
    if view.silenced_until:
        notes.append(f"🔕 Silenced until {_when(view.silenced_until)}")
    if view.incident_id:
        notes.append(f"Incident {format_incident_id(view.incident_id)}")
    if notes:
        blocks.append(_context(*notes))

    buttons = []
    if view.can_roll_back and view.service is not None:
        buttons.append(
            _button(
                f"⏪ Roll back {view.service}",
                action_ids.ROLL_BACK,
                button_value(
                    group_id=view.group_id, incident_id=view.incident_id, service=view.service
                ),
                style="danger",
            )
        )
    if view.can_silence and view.status == "firing":
        buttons.append(
            _button("🔕 Silence 1h", action_ids.SILENCE_1H, button_value(group_id=view.group_id))
        )
    if view.status == "resolved" and view.incident_id:
        buttons.append(
            _button(
                "Export postmortem",
                action_ids.EXPORT,
                button_value(incident_id=view.incident_id),
            )
        )
    blocks.extend(_actions(f"alert.{view.group_id}", buttons))
    return text, _fit(blocks)


def suggestion_message(
    *, service: str, group_id: int, text: str, incident_id: int | None = None
) -> tuple[str, list[Block]]:
    """A warning rule's suggestion (or a refused automatic rollback): a Roll back button only.

    Posted in the alert group's thread; nothing happens unless a person clicks.
    """
    button = _button(
        f"⏪ Roll back {service}",
        action_ids.ROLL_BACK,
        button_value(group_id=group_id, incident_id=incident_id, service=service),
    )
    return text, [_section(escape(clip(text, MAX_TEXT))), *_actions("suggestion", [button])]


# --- rollbacks ---------------------------------------------------------------------

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


def state_label(state: State) -> str:
    icon, label = _STATE_LABEL[state]
    return f"{icon} {label}"


def _target(view: RollbackView) -> str:
    if view.flag:
        return f"flag {view.flag} off"
    if view.to_revision is not None:
        return f"revision {view.to_revision}"
    return "the last stable revision"


def countdown_text(view: RollbackView, *, now: datetime) -> str:
    """``Automatic rollback of checkout to revision 41 in 60 s``."""
    ends = view.countdown_ends_at or now
    seconds = max(math.ceil((ends - now).total_seconds()), 0)
    return f"Automatic rollback of {view.service} to {_target(view)} in {seconds} s"


def _approvals(view: RollbackView) -> str | None:
    if view.approvals_required <= 0:
        return None
    got = len(view.approvers)
    who = f" ({', '.join(_who(a) for a in view.approvers)})" if view.approvers else ""
    line = f"*Approvals:* {got} of {view.approvals_required}{who}"
    if view.state is State.REQUESTED and view.may_approve:
        line += f". May approve: {view.may_approve} (not the requester)"
    return line


def _progress(view: RollbackView) -> str | None:
    if view.step is None or not view.steps:
        return None
    done = max(min(view.step, view.steps), 0)
    bar = "▰" * done + "▱" * (view.steps - done)
    canary = f" · canary at {view.canary_percent}%" if view.canary_percent is not None else ""
    return f"{bar} Step {view.step} of {view.steps}{canary}"


def _rollback_button(view: RollbackView, action: str) -> dict[str, Any] | None:
    rid = format_rollback_id(view.rollback_id)
    value = button_value(rollback_id=view.rollback_id)
    if action == action_ids.APPROVE:
        return _button("Approve", action, value, style="primary")
    if action == action_ids.DENY:
        return _button("Deny", action, value)
    if action == action_ids.PAUSE:
        return _button("⏸️ Pause", action, value)
    if action == action_ids.RESUME:
        return _button("▶️ Resume", action, value, style="primary")
    if action == action_ids.SKIP_TO_END:
        return _button(
            "⏭️ Go to 0% now",
            action,
            value,
            confirm=_confirm(
                f"Move all traffic off the canary of {view.service}?",
                f"Skips the remaining steps of {rid} and applies the last one at once, "
                "without health gates in between.",
                "Go to 0% now",
            ),
        )
    if action == action_ids.ABORT:
        return _button(
            "Abort",
            action,
            value,
            style="danger",
            confirm=_confirm(
                f"Abort {rid}?",
                f"Stops the rollback of *{escape(view.service)}* where it is. "
                "Steps already applied stay applied.",
                "Abort",
            ),
        )
    if action == action_ids.CANCEL_COUNTDOWN:
        return _button("Cancel", action, value)
    if action == action_ids.RUN_NOW:
        return _button(
            "Roll back now",
            action,
            value,
            style="danger",
            confirm=_confirm(
                f"Roll back {view.service} now?",
                f"Rolls *{escape(view.service)}* back to {_target(view)} without waiting "
                "for the countdown.",
                "Roll back now",
            ),
        )
    if action == action_ids.UNDO_FLAG:
        return _button(
            "Undo flag change",
            action,
            button_value(rollback_id=view.rollback_id, flag=view.flag),
            confirm=_confirm(
                f"Turn {view.flag or 'the flag'} back on?",
                f"Restores the flag's previous value on *{escape(view.service)}*.",
                "Turn it back on",
            ),
        )
    if action == action_ids.EXPORT:
        if view.incident_id is None:
            return None
        return _button("Export postmortem", action, button_value(incident_id=view.incident_id))
    raise ValueError(f"not a rollback action: {action!r}")


def _rollback_title(view: RollbackView) -> str:
    icon, label = _STATE_LABEL[view.state]
    drill = "🧪 DRILL · " if view.drill else ""
    kind = "Flag kill switch" if view.flag else "Rollback"
    return f"{drill}{icon} {kind} {format_rollback_id(view.rollback_id)} · {view.service} · {label}"


def _rollback_text(view: RollbackView, now: datetime | None) -> str:
    rid = format_rollback_id(view.rollback_id)
    drill = "DRILL: " if view.drill else ""
    _, label = _STATE_LABEL[view.state]
    if view.state is State.SCHEDULED and view.countdown_ends_at and now:
        head = f"{drill}{rid}: {countdown_text(view, now=now)}"
    else:
        head = (
            f"{drill}Rollback {rid} of {view.service} ({view.environment}) "
            f"to {_target(view)}: {label}"
        )
    if view.state is State.REQUESTED and view.approvals_required:
        head += f" ({len(view.approvers)} of {view.approvals_required} approvals)"
    if view.incident_id:
        head += f". {format_incident_id(view.incident_id)}"
    return head + "."


def rollback_message(view: RollbackView, *, now: datetime | None = None) -> tuple[str, list[Block]]:
    """The rollback's own message, updated in place as it moves through its states.

    ``now`` turns a countdown's end into "in 60 s"; without it only the end time shows.
    """
    blocks: list[Block] = [_header(_rollback_title(view))]
    if view.drill:
        blocks.append(_context("🧪 *Drill*: server-side dry run, nothing is changed."))
    if view.state is State.SCHEDULED and view.countdown_ends_at:
        line = (
            countdown_text(view, now=now)
            if now
            else f"Automatic rollback of {view.service} to {_target(view)}"
        )
        blocks.append(_section(f"⏳ *{escape(line)}* (at {_when(view.countdown_ends_at)})"))

    fields = [
        ("Service", escape(f"{view.service} ({view.environment})")),
        ("Strategy", escape(view.strategy)),
        ("From", _revision(view.from_revision, view.from_image)),
        (
            "To",
            escape(_target(view)) if view.flag else _revision(view.to_revision, view.to_image),
        ),
        ("Requested by", "automation" if view.automatic else _who(view.requested_by)),
    ]
    if view.incident_id:
        fields.append(("Incident", format_incident_id(view.incident_id)))
    blocks.append(_fields(fields))

    about = []
    if view.trigger:
        about.append(f"*Trigger:* {escape(clip(view.trigger, 500))}")
    if view.reason:
        about.append(f"*Reason:* {escape(clip(view.reason, MAX_REASON))}")
    approvals = _approvals(view)
    if approvals:
        about.append(approvals)
    if about:
        blocks.append(_section("\n".join(about)))

    progress = _progress(view)
    if progress:
        blocks.append(_section(progress))
    if view.changes:
        lines = [_change_line(c) for c in view.changes]
        blocks.append(_section(_bounded_lines(lines, header="*What changes*")))
    if view.warnings:
        lines = [f"⚠️ {escape(clip(w, 500))}" for w in view.warnings]
        blocks.append(_section(_bounded_lines(lines)))
    if view.state is State.DENIED and view.denied_by:
        why = f": {escape(clip(view.deny_reason, MAX_REASON))}" if view.deny_reason else ""
        blocks.append(_section(f"🚫 Denied by {_who(view.denied_by)}{why}"))
    if view.error:
        blocks.append(_section(f"❌ *Error:* {escape(clip(view.error, 2500))}"))
    if view.finished_at and view.started_at:
        took = format_duration(view.finished_at - view.started_at)
        blocks.append(_context(f"Took {took} · finished {_when(view.finished_at)}"))

    buttons = [b for a in view.actions if (b := _rollback_button(view, a)) is not None]
    blocks.extend(_actions(f"rollback.{view.rollback_id}", buttons))
    return _rollback_text(view, now), _fit(blocks)


def progress_line(view: RollbackView, event: str) -> str:
    """One thread reply per step: ``🔄 R-12 checkout: step 2 of 4, canary at 20%. <event>``."""
    icon, _ = _STATE_LABEL[view.state]
    drill = "🧪 DRILL " if view.drill else ""
    where = ""
    if view.step is not None and view.steps:
        where = f": step {view.step} of {view.steps}"
        if view.canary_percent is not None:
            where += f", canary at {view.canary_percent}%"
    line = f"{drill}{icon} {format_rollback_id(view.rollback_id)} {view.service}{where}. "
    return clip(line + escape(event), MAX_TEXT)


def summary_line(view: RollbackView) -> str:
    """The one line posted to the channel when a rollback ends."""
    rid = format_rollback_id(view.rollback_id)
    icon, label = _STATE_LABEL[view.state]
    drill = "🧪 DRILL (dry run, nothing changed): " if view.drill else ""
    where = f"{view.service} ({view.environment})"
    took = (
        f" in {format_duration(view.finished_at - view.started_at)}"
        if view.finished_at and view.started_at
        else ""
    )
    if view.state is State.DONE:
        target = escape(_target(view)) if view.flag else _revision(view.to_revision, view.to_image)
        done = "kill switch applied" if view.flag else "rolled back"
        line = f"{icon} {drill}{rid}: {escape(where)} {done} to {target}{took}"
        by = "automation" if view.automatic else _who(view.requested_by)
        line += f". Requested by {by}"
        if view.approvers:
            line += f", approved by {', '.join(_who(a) for a in view.approvers)}"
    elif view.state is State.DENIED:
        line = f"{icon} {drill}{rid}: rollback of {escape(where)} denied"
        if view.denied_by:
            line += f" by {_who(view.denied_by)}"
        if view.deny_reason:
            line += f": {escape(clip(view.deny_reason, 500))}"
    elif view.state is State.FAILED:
        line = f"{icon} {drill}{rid}: rollback of {escape(where)} to {_target(view)} failed{took}"
        if view.error:
            line += f": {escape(clip(view.error, 500))}"
    else:
        line = f"{icon} {drill}{rid}: rollback of {escape(where)} to {_target(view)} {label}"
    if view.incident_id:
        line += f". {format_incident_id(view.incident_id)}"
    return clip(line + ".", MAX_TEXT)


# --- modals ----------------------------------------------------------------------


def _reason_input(*, optional: bool, initial: str | None, hint: str) -> Block:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": action_ids.REASON_INPUT,
        "multiline": True,
        "max_length": MAX_REASON,
        "placeholder": _plain(hint, 150),
    }
    if initial:
        element["initial_value"] = clip(initial, MAX_REASON)
    return {
        "type": "input",
        "block_id": action_ids.REASON_BLOCK,
        "optional": optional,
        "label": _plain("Reason", 2000),
        "element": element,
    }


def _modal(
    callback_id: str, title: str, submit: str, metadata: str, blocks: list[Block]
) -> dict[str, Any]:
    if len(metadata) > MAX_METADATA:
        raise ValueError(f"private_metadata longer than {MAX_METADATA} characters")
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(title, MAX_MODAL_TITLE),
        "submit": _plain(submit, MAX_MODAL_TITLE),
        "close": _plain("Cancel", MAX_MODAL_TITLE),
        "private_metadata": metadata,
        "blocks": _fit(blocks, MAX_MODAL_BLOCKS),
    }


def request_modal(preview: RequestPreview) -> dict[str, Any]:
    """The confirmation before a rollback: current vs target, the diff, who must approve."""
    where = escape(f"{preview.service} ({preview.environment})")
    if preview.drill:
        intro = (
            f"🧪 *Drill* of a rollback of *{where}* with the *{escape(preview.strategy)}* "
            "strategy. Every step runs as a server-side dry run: nothing is changed."
        )
    else:
        intro = f"Roll back *{where}* with the *{escape(preview.strategy)}* strategy."
    stable = " ✅ known stable" if preview.target_stable else ""
    blocks: list[Block] = [
        _section(intro),
        _fields(
            [
                ("Running now", _revision(preview.current_revision, preview.current_image)),
                (
                    "Rolls back to",
                    _revision(preview.target_revision, preview.target_image) + stable,
                ),
            ]
        ),
    ]
    if preview.changes:
        lines = [_change_line(c) for c in preview.changes]
        blocks.append(_section(_bounded_lines(lines, header="*What changes*")))
    else:
        blocks.append(_section("*What changes*\nNo image or configuration differences found."))
    if preview.warnings:
        lines = [f"⚠️ {escape(clip(w, 500))}" for w in preview.warnings]
        blocks.append(_section(_bounded_lines(lines)))
    if preview.approvals_required > 0:
        who = f": {preview.must_approve}" if preview.must_approve else ""
        plural = "s" if preview.approvals_required > 1 else ""
        approval = (
            f"Needs {preview.approvals_required} approval{plural} by someone other than you{who}."
        )
    else:
        approval = "No approval needed: it starts when you submit."
    blocks.append(_context(approval))
    blocks.append(
        _reason_input(
            optional=preview.drill,
            initial=preview.reason,
            hint="What is wrong with the running revision?",
        )
    )
    return _modal(
        action_ids.REQUEST_MODAL,
        "Rollback drill" if preview.drill else "Confirm rollback",
        "Run drill" if preview.drill else "Roll back",
        preview.private_metadata,
        blocks,
    )


def deny_modal(rollback_id: int) -> dict[str, Any]:
    """Deny with a required reason, so the requester knows what to do instead."""
    rid = format_rollback_id(rollback_id)
    blocks: list[Block] = [
        _section(f"Deny rollback *{rid}*. Say why, so the requester knows what to do instead."),
        _reason_input(optional=False, initial=None, hint="e.g. wrong revision, use 40"),
    ]
    return _modal(
        action_ids.DENY_MODAL, f"Deny {rid}", "Deny", button_value(rollback_id=rollback_id), blocks
    )


def submitted_reason(state_values: Mapping[str, Any]) -> str | None:
    """The reason typed into either modal, from ``view["state"]["values"]``."""
    block = state_values.get(action_ids.REASON_BLOCK) or {}
    value = (block.get(action_ids.REASON_INPUT) or {}).get("value")
    return (value.strip() or None) if isinstance(value, str) else None


# --- listings --------------------------------------------------------------------

_MAX_ROWS = 40


def history_blocks(
    service: str, rows: Sequence[RevisionRow], warnings: Sequence[str] = ()
) -> list[Block]:
    """Revisions of ``service``, newest first as given, with a "Roll back to" per older one."""
    blocks: list[Block] = [_header(f"Revisions of {service}")]
    if warnings:
        blocks.append(_context(*(f"⚠️ {escape(clip(w, 500))}" for w in warnings)))
    if not rows:
        blocks.append(_section(f"No revisions of *{escape(service)}* found."))
        return blocks
    for row in rows[:_MAX_ROWS]:
        parts = [f"*{row.number}*", _code(row.image) if row.image else "image unknown"]
        if row.age is not None:
            parts.append(f"{format_duration(row.age)} ago")
        if row.stable:
            parts.append("✅ stable")
        if row.current:
            parts.append("▶️ running")
        block: Block = _section(" · ".join(parts))
        if not row.current:
            block["accessory"] = _button(
                f"Roll back to {row.number}",
                action_ids.ROLL_BACK,
                button_value(service=service, to_revision=row.number),
            )
        blocks.append(block)
    if len(rows) > _MAX_ROWS:
        blocks.append(_context(f"…and {len(rows) - _MAX_ROWS} more"))
    return _fit(blocks)


def _status_line(row: StatusRow) -> str:
    parts = [
        f"*{format_rollback_id(row.rollback_id)}*",
        escape(f"{row.service} ({row.environment})"),
        state_label(row.state),
    ]
    if row.drill:
        parts.insert(0, "🧪 DRILL")
    if row.to_revision is not None:
        parts.append(f"to revision {row.to_revision}")
    if row.step is not None and row.steps:
        step = f"step {row.step} of {row.steps}"
        if row.canary_percent is not None:
            step += f", canary at {row.canary_percent}%"
        parts.append(step)
    parts.append(escape(row.strategy))
    parts.append("automatic" if row.automatic else f"requested by {_who(row.requested_by)}")
    if row.age is not None:
        parts.append(f"started {format_duration(row.age)} ago")
    if row.incident_id:
        parts.append(format_incident_id(row.incident_id))
    return " · ".join(parts)


def status_blocks(rows: Sequence[StatusRow]) -> list[Block]:
    """Active rollbacks and their step, one line each."""
    if not rows:
        return [_section("No active rollbacks.")]
    blocks: list[Block] = [_header(f"Active rollbacks ({len(rows)})")]
    blocks.extend(_section(_status_line(row)) for row in rows[:_MAX_ROWS])
    if len(rows) > _MAX_ROWS:
        blocks.append(_context(f"…and {len(rows) - _MAX_ROWS} more"))
    return _fit(blocks)


def help_blocks() -> list[Block]:
    """Every verb with its form and an example; the text twin is ``commands.HELP_TEXT``."""
    blocks: list[Block] = [_header("/rollback commands")]
    for verb in VERBS:
        blocks.append(_section(f"`{verb.usage}`\n{verb.summary}\nExample: `{verb.example}`"))
    notes = HELP_TEXT.splitlines()[-2:]
    blocks.append(_context(*notes))
    return _fit(blocks)


def error_text(error: str | BaseException, *, usage: str | None = None) -> str:
    """The ephemeral reply for something that could not be done, with the right form."""
    if isinstance(error, CommandError):
        body = str(error)
    else:
        body = str(error) or type(error).__name__
        if usage:
            body += f" Usage: `{usage}`"
    return clip(f"⚠️ {body}", MAX_TEXT)
