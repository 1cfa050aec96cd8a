"""The postmortem of one incident, built from the append-only timeline.

Pure: it receives the incident and its events and returns a document (dict)
that renders to JSON or Markdown. Time-to-acknowledge runs from the incident
opening to the first human action on it; time-to-mitigate to the moment a
rollback was verified healthy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from rollback_bot.ids import format_incident_id, format_rollback_id


class IncidentLike(Protocol):
    id: int
    service: str
    title: str
    state: str
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    mitigated_at: datetime | None
    resolved_at: datetime | None


class EventLike(Protocol):
    at: datetime
    actor: str
    kind: str
    summary: str
    rollback_id: int | None
    data: Any


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else round((end - start).total_seconds(), 3)


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{seconds:.1f}s"


def build(incident: IncidentLike, events: Sequence[EventLike]) -> dict[str, Any]:
    return {
        "incident": {
            "id": format_incident_id(incident.id),
            "service": incident.service,
            "title": incident.title,
            "state": incident.state,
            "opened_at": incident.opened_at.isoformat(),
            "acknowledged_at": incident.acknowledged_at and incident.acknowledged_at.isoformat(),
            "acknowledged_by": incident.acknowledged_by,
            "mitigated_at": incident.mitigated_at and incident.mitigated_at.isoformat(),
            "resolved_at": incident.resolved_at and incident.resolved_at.isoformat(),
        },
        "metrics": {
            "time_to_acknowledge_seconds": _seconds(incident.opened_at, incident.acknowledged_at),
            "time_to_mitigate_seconds": _seconds(incident.opened_at, incident.mitigated_at),
            "time_to_resolve_seconds": _seconds(incident.opened_at, incident.resolved_at),
        },
        "timeline": [
            {
                "at": e.at.isoformat(),
                "actor": e.actor,
                "kind": e.kind,
                "summary": e.summary,
                "rollback": format_rollback_id(e.rollback_id) if e.rollback_id else None,
                "data": e.data or {},
            }
            for e in events
        ],
    }


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: dict[str, Any]) -> str:
    inc, metrics = doc["incident"], doc["metrics"]
    lines = [
        f"# Postmortem {inc['id']}: {inc['title']}",
        "",
        f"- Service: `{inc['service']}`",
        f"- State: {inc['state']}",
        f"- Opened: {inc['opened_at']}",
        f"- Acknowledged: {inc['acknowledged_at'] or 'never'}"
        + (f" by {inc['acknowledged_by']}" if inc["acknowledged_by"] else ""),
        f"- Mitigated: {inc['mitigated_at'] or 'not yet'}",
        f"- Resolved: {inc['resolved_at'] or 'not yet'}",
        "",
        "## Metrics",
        "",
        f"- Time to acknowledge: {human_duration(metrics['time_to_acknowledge_seconds'])}",
        f"- Time to mitigate: {human_duration(metrics['time_to_mitigate_seconds'])}",
        f"- Time to resolve: {human_duration(metrics['time_to_resolve_seconds'])}",
        "",
        "## Timeline",
        "",
        "| Time (UTC) | Actor | Event | Rollback | Summary |",
        "|---|---|---|---|---|",
    ]
    for e in doc["timeline"]:
        lines.append(
            f"| {e['at']} | {_cell(e['actor'])} | {e['kind']} | {e['rollback'] or ''} "
            f"| {_cell(e['summary'])} |"
        )
    lines += ["", "## Follow-ups", "", "- [ ] Root cause", "- [ ] Fix forward or revert in Git", ""]
    return "\n".join(lines)


def render(doc: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return to_json(doc)
    if fmt == "md":
        return to_markdown(doc)
    raise ValueError(f"unknown format {fmt!r}: use md or json")
