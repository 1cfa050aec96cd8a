"""The postmortem as one self-contained HTML page: inline CSS and SVG, no external asset,
no script, so it opens offline and can be attached anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from typing import Any

from rollback_bot.incidents import postmortem_picture as picture
from rollback_bot.incidents.postmortem import (
    Postmortem,
    actor_label,
    human_duration,
    in_chunks,
    iso_time,
    person,
)

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1040px;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.9em}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.drill{color:#777;font-style:italic}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:2px 12px}
dl.summary dt{font-weight:bold}pre{background:#f6f8fa;padding:8px;overflow:auto}
.picture{overflow-x:auto}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def iter_html(pm: Postmortem) -> Iterator[str]:
    head = pm.head
    inc, s, metrics = head["incident"], head["summary"], head["metrics"]
    title = f"Postmortem {inc['id']}: {inc['title']}"
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        '<h2 id="summary">Summary</h2><dl class="summary">',
    ]
    rows = [
        ("Service", inc["service"]),
        ("Environment", s["environment"] or "unknown"),
        ("Cluster", s["cluster"] or "default"),
        ("Severity", s["severity"] or "none (no alert)"),
        ("Trigger", s["trigger"]),
        ("Outcome", s["outcome"]),
        ("State", inc["state"]),
        ("Opened", inc["opened_at"]),
        ("First alert", s["first_alert_at"] or "none"),
        ("Mitigated", s["mitigated_at"] or "not yet"),
        ("Resolved", s["resolved_at"] or "not yet"),
    ]
    if s["drills"]:
        rows.append(("Drills (not counted)", ", ".join(s["drills"])))
    out += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows]
    out.append("</dl>")
    ack_by = person(s["first_human_action_by"]) if s["first_human_action_by"] else ""
    out += [
        '<h2 id="metrics">Metrics</h2>',
        "<p>Measured from the first alert; drills are not counted.</p><ul>",
        f"<li>Time to acknowledge: {_e(human_duration(metrics['time_to_acknowledge_seconds']))}"
        + (f" (first action by {_e(ack_by)})" if ack_by else "")
        + "</li>",
        f"<li>Time to mitigate: {_e(human_duration(metrics['time_to_mitigate_seconds']))}</li>",
        f"<li>Time to resolve: {_e(human_duration(metrics['time_to_resolve_seconds']))}</li>",
        "</ul>",
        '<h2 id="picture">The incident on one time axis</h2><div class="picture">',
        picture.svg(pm.marks, title=f"{inc['id']} {inc['service']}"),
        "</div>",
        '<h2 id="rollbacks">Rollbacks</h2>',
    ]
    if not head["rollbacks"]:
        out.append("<p>No rollback.</p>")
    for r in head["rollbacks"]:
        out += _rollback(r)
    out.append('<h2 id="notes">Notes</h2>')
    if not head["notes"]:
        out.append("<p>No notes were added.</p>")
    else:
        out.append("<ul>")
        for n in head["notes"]:
            link = f' (<a href="{_e(n["permalink"])}">message</a>)' if n.get("permalink") else ""
            who = actor_label(n["actor"], pm.names.get(n["actor"]))
            out.append(f"<li>{_e(n['at'])} {_e(who)}: {_e(n['text'])}{link}</li>")
        out.append("</ul>")
    out += [
        '<h2 id="follow-ups">What went wrong / follow-ups</h2>',
        "<p><em>To be filled in by the team.</em></p>",
        "<ul><li>What went wrong:</li><li>What went well:</li>",
        "<li>&#9744; Root cause</li><li>&#9744; Fix forward or revert in Git</li>"
        + "".join(f"<li>&#9744; {_e(item)}</li>" for item in head["follow_ups"])
        + "</ul>",
        '<h2 id="timeline">Timeline</h2>',
        "<table><thead><tr><th>Time (UTC)</th><th>Actor</th><th>Event</th><th>Rollback</th>"
        "<th>Summary</th></tr></thead><tbody>",
        "",
    ]
    yield "\n".join(out)
    names, drills = pm.names, pm.drills
    # The cells around the time and the summary are built once per actor, kind and
    # rollback; rows go out 256 at a time (whole rows, for the redactor).
    parts: dict[tuple[str, str, int | None], tuple[str, str]] = {}

    def timeline_rows() -> Iterator[str]:
        for e in pm.events:
            actor, kind, rid = e.actor, e.kind, e.rollback_id
            part = parts.get((actor, kind, rid))
            if part is None:
                drill = bool(rid and rid in drills)
                rb = "" if not rid else (f"R-{rid} (drill)" if drill else f"R-{rid}")
                label = actor_label(actor, names.get(actor))
                part = parts[(actor, kind, rid)] = (
                    '<tr class="drill"><td>' if drill else "<tr><td>",
                    f"</td><td>{escape(label)}</td><td>{escape(kind)}</td><td>{rb}</td><td>",
                )
            yield f"{part[0]}{iso_time(e)}{part[1]}{escape(e.summary)}</td></tr>\n"

    yield from in_chunks(timeline_rows())
    yield "</tbody></table>\n</body></html>\n"


def _rollback(r: dict[str, Any]) -> list[str]:
    c = r["changed"]
    drill = " (DRILL, not counted)" if r["drill"] else ""
    approvals = (
        ", ".join(f"{a['decision']} by {person(a['by'])} at {a['at']}" for a in r["approvals"])
        or "none"
    )
    out = [
        f"<h3>{_e(r['id'])}: {_e(r['strategy'])}, {_e(r['state'])}{_e(drill)}</h3><ul>",
        f"<li>Requested by: {_e(person(r['requested_by']))}"
        + (" (automatic)" if r["automatic"] else "")
        + "</li>",
        f"<li>Approvals: {_e(approvals)}</li>",
        f"<li>Revision: {_e(c['from_revision'] or '?')} &rarr; {_e(c['to_revision'] or '?')}</li>",
        f"<li>Image: {_e(c['from_image'] or '?')} &rarr; {_e(c['to_image'] or '?')}</li>",
        f"<li>Duration: {_e(human_duration(r['duration_seconds']))}</li></ul>",
    ]
    if c["changes"]:
        out.append("<pre>" + _e("\n".join(c["changes"])) + "</pre>")
    if r["steps"]:
        out.append(
            "<table><thead><tr><th>Step (UTC)</th><th>Event</th><th>By</th><th>Took</th>"
            "<th>Summary</th></tr></thead><tbody>"
        )
        for st in r["steps"]:
            out.append(
                f"<tr><td>{_e(st['at'])}</td><td>{_e(st['kind'])}</td><td>{_e(st['actor'])}</td>"
                f"<td>{_e(human_duration(st['duration_seconds']))}</td>"
                f"<td>{_e(st['summary'])}</td></tr>"
            )
        out.append("</tbody></table>")
        if r.get("steps_omitted"):
            out.append(f"<p>…and {r['steps_omitted']} more steps: see the timeline.</p>")
    return out
