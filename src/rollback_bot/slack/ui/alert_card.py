"""The alert group's message, and the suggestion a warning rule posts in its thread.

The card says what fires, where, what runs and what was last stable, and
offers the way out (Roll back, Silence 1h, or the postmortem once resolved).
"""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ButtonElement

from rollback_bot.slack.commands import format_incident_id
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.kit import (
    Message,
    actions,
    button,
    context,
    fields,
    header,
    message,
    section,
)
from rollback_bot.slack.ui.limits import MAX_TEXT, clip
from rollback_bot.slack.ui.mrkdwn import escape, format_duration, link, revision, when
from rollback_bot.slack.ui.values import button_value
from rollback_bot.slack.ui.views import AlertGroupView

_SEVERITY_ICON = {"critical": "🔴", "error": "🔴", "warning": "🟠", "info": "🔵"}


def _where(service: str | None, environment: str | None) -> str:
    if service is None:
        return "no catalog service"
    return f"{service} ({environment})" if environment else service


def _title_and_text(view: AlertGroupView) -> tuple[str, str]:
    """The header (plain text, cut by the header) and the fallback text (escaped mrkdwn).

    The fallback is what notifications show, and Slack reads mentions in it:
    every outside field is escaped and cut so that the whole stays far inside
    Slack's 40,000 characters however long the alert's name is.
    """
    where = _where(view.service, view.environment)
    name, place = escape(view.alertname, 500), escape(where, 300)
    incident = f" {format_incident_id(view.incident_id)}." if view.incident_id else ""
    if view.rollback_line:
        incident += f" {view.rollback_line.split(' (')[0]}."
    if view.status == "resolved":
        lasted = f" after {format_duration(view.resolved_after)}" if view.resolved_after else ""
        return (
            f"✅ RESOLVED · {clip(view.alertname, 100)} · {where}",
            f"✅ RESOLVED: {name} on {place}{lasted}.{incident}",
        )
    icon = _SEVERITY_ICON.get(view.severity.lower(), "⚪")
    return (
        f"{icon} FIRING · {clip(view.alertname, 100)} · {where}",
        f"{icon} FIRING: {name} on {place}, {escape(view.severity, 100)}, "
        f"{view.firing_count} of {view.total_count} firing.{incident}",
    )


def _facts(view: AlertGroupView) -> Block:
    pairs = [
        ("Service", escape(_where(view.service, view.environment), 500)),
        ("Severity", escape(view.severity, 500)),
        ("Alerts", f"{view.firing_count} of {view.total_count} firing"),
        ("First seen", when(view.first_seen)),
    ]
    if view.cluster:
        pairs.insert(1, ("Cluster", escape(view.cluster, 500)))
    if view.status == "resolved":
        lasted = format_duration(view.resolved_after) if view.resolved_after else "unknown"
        pairs.append(("Lasted", lasted))
    else:
        pairs.append(("Last seen", when(view.last_seen)))
    return fields(pairs)


def _revisions(view: AlertGroupView) -> Block:
    stable = (
        f"Last stable: {revision(view.stable_revision, view.stable_image)}"
        if view.stable_revision is not None or view.stable_image
        else "No stable revision known"
    )
    running = f"Running now: {revision(view.current_revision, view.current_image)}"
    return context(running, stable)


def _notes(view: AlertGroupView) -> list[str]:
    links = [
        link(url, label)
        for label, url in (
            ("Runbook", view.runbook_url),
            ("Dashboard", view.dashboard_url),
            ("Panel", view.panel_url),
            ("Silence", view.silence_url),
            ("Source", view.generator_url),
        )
        if url
    ]
    notes = [" · ".join(links)] if links else []
    if view.silenced_until:
        notes.append(f"🔕 Silenced until {when(view.silenced_until)}")
    if view.incident_id:
        notes.append(f"Incident {format_incident_id(view.incident_id)}")
    return notes


def _buttons(view: AlertGroupView) -> list[ButtonElement]:
    out = []
    if view.can_roll_back and view.service is not None:
        out.append(
            button(
                f"⏪ Roll back {view.service}",
                action_ids.ROLL_BACK,
                button_value(
                    group_id=view.group_id, incident_id=view.incident_id, service=view.service
                ),
                style="danger",
            )
        )
    if view.can_silence and view.status == "firing":
        out.append(
            button("🔕 Silence 1h", action_ids.SILENCE_1H, button_value(group_id=view.group_id))
        )
    if (view.status == "resolved" or view.can_export) and view.incident_id:
        out.append(
            button(
                "Export postmortem", action_ids.EXPORT, button_value(incident_id=view.incident_id)
            )
        )
    return out


def alert_message(view: AlertGroupView) -> Message:
    """The alert group's message: what fires, where, what runs, and the way out."""
    title, text = _title_and_text(view)
    blocks: list[Block] = [header(title)]
    about = []
    summary = escape(view.summary or "", 500).strip()
    description = escape(view.description or "", 2000).strip()
    if summary:
        about.append(f"*{summary}*")
    if description:
        about.append(description)
    if about:
        blocks.append(section("\n".join(about)))
    blocks.append(_facts(view))
    if view.rollback_line or view.incident_line:
        lines = [x for x in (view.rollback_line, view.incident_line) if x]
        blocks.append(section("\n".join(clip(x, 1000) for x in lines)))
    if view.service is not None:
        blocks.append(_revisions(view))
    notes = _notes(view)
    if notes:
        blocks.append(context(*notes))
    blocks.extend(actions(f"{action_ids.ALERT_BLOCK}.{view.group_id}", _buttons(view)))
    return message(text, blocks)


def suggestion_message(
    *, service: str, group_id: int, text: str, incident_id: int | None = None
) -> Message:
    """A warning rule's suggestion (or a refused automatic rollback): a Roll back button only.

    Posted in the alert group's thread; nothing happens unless a person clicks.
    """
    roll_back = button(
        f"⏪ Roll back {service}",
        action_ids.ROLL_BACK,
        button_value(group_id=group_id, incident_id=incident_id, service=service),
    )
    return message(
        escape(text),
        [
            section(escape(text, MAX_TEXT).strip() or "A rollback is suggested."),
            *actions(action_ids.SUGGESTION_BLOCK, [roll_back]),
        ],
    )
