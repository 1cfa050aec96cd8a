"""The postmortem of one incident, built from the append-only timeline.

Pure: it receives the incident, its events, its rollbacks (with their approvals) and its
alert groups, and returns a document that renders to JSON, Markdown or HTML, streamed in
chunks so a long timeline is never held twice. The JSON follows a versioned schema
(``postmortem.schema.json`` beside this module; ``SCHEMA_VERSION``).

The metrics, measured from the first alert (the incident's opening when no alert fired):

- *time to acknowledge*: to the first action of a person (a Slack user) on the incident;
- *time to mitigate*: to the incident's mitigation as ``incidents/lifecycle.py`` defines
  it on evidence (the alerts resolved, the health gate's alert checks came back clear
  after a rollback, or a person declared it), or to its resolution when it was never
  marked mitigated;
- *time to resolve*: to the moment every alert of the incident resolved.

Drills are marked wherever they appear and never count: a person's action on a drill
is not an acknowledgement, and a drill's clear health gate is not a mitigation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from rollback_bot.ids import format_incident_id, format_rollback_id
from rollback_bot.rollbacks.gitops_follow_ups import follow_ups

SCHEMA_VERSION = "1.0"
#: Steps listed per rollback (a long gradual rollback has thousands; the timeline has all).
STEP_LIMIT = 100
#: The JSON schema of the export (shipped in the wheel; docs/postmortem.md describes it).
SCHEMA_FILE = "postmortem.schema.json"
FORMATS = ("md", "json", "html")

#: A Slack user or Enterprise Grid user id: the actors that are people.
_PERSON = re.compile(r"^[UW][A-Z0-9]{2,}$")
#: Actions of a person that are not a response to the incident.
_NOT_AN_ACKNOWLEDGEMENT = frozenset({"postmortem.exported"})
#: The rollback kinds that are steps of its life (state changes and Kubernetes writes).
_STEP_KINDS = ("rollback.", "kube.changed", "health.passed", "health.failed", "countdown.")
_SEVERITY_ORDER = {"critical": 0, "error": 1, "high": 1, "warning": 2, "info": 3}

Names = Callable[[str], str | None]


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

    @property
    def data(self) -> Any: ...


@dataclass(frozen=True)
class ApprovalInfo:
    actor: str
    decision: str
    at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class RollbackInfo:
    id: int
    strategy: str
    state: str
    requested_by: str
    environment: str = ""
    reason: str = ""
    drill: bool = False
    automatic: bool = False
    from_revision: str | None = None
    to_revision: str | None = None
    from_image: str | None = None
    to_image: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    changes: tuple[str, ...] = ()
    error: str | None = None
    approvals: tuple[ApprovalInfo, ...] = ()


@dataclass(frozen=True)
class AlertInfo:
    alertname: str
    severity: str
    first_seen: datetime
    resolved_at: datetime | None = None
    status: str = "firing"


@dataclass(frozen=True)
class Context:
    """What the timeline alone does not say: the catalog's environment and cluster."""

    environment: str | None = None
    cluster: str | None = None


def schema() -> dict[str, Any]:
    """The JSON schema every JSON export follows."""
    from importlib.resources import files

    return dict(json.loads(files(__package__).joinpath(SCHEMA_FILE).read_text("utf-8")))


def is_person(actor: str) -> bool:
    return bool(_PERSON.match(actor))


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


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


def _data_json(event: Any) -> str:
    """The event's ``data`` as JSON text, without decoding it when the loader kept it raw."""
    raw = getattr(event, "data_json", None)
    if raw is not None:
        return str(raw)
    return json.dumps(dict(event.data or {}), separators=(",", ":"), default=str)


def _data(event: Any) -> dict[str, Any]:
    value = event.data
    return dict(value) if isinstance(value, Mapping) else {}


@dataclass
class Postmortem:
    """Everything but the timeline, as plain JSON values; the timeline stays a sequence."""

    head: dict[str, Any]
    events: Sequence[Any]
    drills: frozenset[int]
    names: dict[str, str] = field(default_factory=dict)
    marks: list[Any] = field(default_factory=list)

    def timeline(self, *, decode: bool = True) -> Iterator[dict[str, Any]]:
        """One dict per event, oldest first; ``decode=False`` leaves ``data`` as JSON text
        under ``_data_json`` (the JSON writer splices it in without decoding it)."""
        names, drills = self.names, self.drills
        for e in self.events:
            rid = e.rollback_id
            row: dict[str, Any] = {
                "at": getattr(e, "iso", None) or e.at.isoformat(),
                "actor": e.actor,
                "actor_name": names.get(e.actor),
                "kind": e.kind,
                "summary": e.summary,
                "rollback": format_rollback_id(rid) if rid else None,
                "drill": rid in drills if rid else False,
            }
            if decode:
                row["data"] = _data(e)
            else:
                row["_data_json"] = _data_json(e)
            yield row


def analyse(
    incident: IncidentLike,
    events: Sequence[Any],
    *,
    rollbacks: Sequence[RollbackInfo] = (),
    alerts: Sequence[AlertInfo] = (),
    context: Context | None = None,
    names: Names | None = None,
) -> Postmortem:
    """One pass over the events: metrics, steps, notes, marks for the picture."""
    from rollback_bot.incidents import postmortem_picture as picture

    context = context or Context()
    drills = frozenset(r.id for r in rollbacks if r.drill)
    first_alert: datetime | None = None
    first_human: tuple[datetime, str] | None = None
    mitigated: datetime | None = None
    mitigations_seen = False
    resolved: datetime | None = None
    steps: dict[int, list[tuple[datetime, str, str, str]]] = {r.id: [] for r in rollbacks}
    notes: list[dict[str, Any]] = []
    step_counts: dict[int, int] = dict.fromkeys(steps, 0)
    people: set[str] = set()
    persons: dict[str, bool] = {}  # few actors, many events
    gitops: list[tuple[str, int | None, dict[str, Any]]] = []
    collector = picture.Collector(drills)
    add_mark = collector.add
    kinds: dict[str, tuple[bool, int, bool]] = {}  # few kinds, many events
    for e in events:
        kind, actor, rid = e.kind, e.actor, e.rollback_id
        of_kind = kinds.get(kind)
        if of_kind is None:
            of_kind = kinds[kind] = _of_kind(kind)
        firing, special, step = of_kind
        if firing and (first_alert is None or e.at < first_alert):
            first_alert = e.at
        human = persons.get(actor)
        if human is None:
            human = persons[actor] = is_person(actor)
        if human:
            people.add(actor)
            if (
                first_human is None
                and not (rid and rid in drills)
                and kind not in _NOT_AN_ACKNOWLEDGEMENT
            ):
                first_human = (e.at, actor)
        if special:
            if special == _MITIGATED:
                mitigations_seen = True
                by = _data(e).get("rollback")
                if mitigated is None and not (isinstance(by, int) and by in drills):
                    mitigated = e.at
            elif special == _RESOLVED:
                if resolved is None:
                    resolved = e.at
            elif special == _NOTE:
                data = _data(e)
                notes.append(
                    {
                        "at": getattr(e, "iso", None) or e.at.isoformat(),
                        "actor": actor,
                        "kind": kind,
                        "text": str(data.get("text") or e.summary),
                        "permalink": data.get("permalink"),
                    }
                )
            else:  # gitops: few, a pause and its resume per rollback
                gitops.append((kind, rid, _data(e)))
        if step and rid and rid in steps:
            step_counts[rid] += 1
            if step_counts[rid] <= STEP_LIMIT + 1:  # one more: the last one's duration
                steps[rid].append((e.at, kind, actor, e.summary))
        add_mark(e)
    for r in rollbacks:
        people.add(r.requested_by)
        people.update(a.actor for a in r.approvals)
    people = {p for p in people if is_person(p)}
    resolved = resolved or incident.resolved_at
    if mitigated is None:
        mitigated = resolved if (mitigations_seen or resolved) else incident.mitigated_at
    start = first_alert or incident.opened_at
    name_of: dict[str, str] = {}
    if names is not None:
        for person in sorted(people):
            found = names(person)
            if found:
                name_of[person] = found

    def who(actor: str | None) -> dict[str, Any] | None:
        return None if actor is None else {"id": actor, "name": name_of.get(actor)}

    real = [r for r in rollbacks if not r.drill]
    severity = _severity(alerts)
    trigger = _trigger(alerts, rollbacks)
    head: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "incident": {
            "id": format_incident_id(incident.id),
            "service": incident.service,
            "title": incident.title,
            "state": incident.state,
            "opened_at": incident.opened_at.isoformat(),
            "acknowledged_at": _iso(incident.acknowledged_at),
            "acknowledged_by": incident.acknowledged_by,
            "mitigated_at": _iso(incident.mitigated_at),
            "resolved_at": _iso(incident.resolved_at),
        },
        "summary": {
            "service": incident.service,
            "environment": context.environment
            or next((r.environment for r in rollbacks if r.environment), None),
            "cluster": context.cluster,
            "severity": severity,
            "trigger": trigger,
            "outcome": _outcome(incident, real, mitigated),
            "first_alert_at": _iso(first_alert),
            "first_human_action_at": _iso(first_human[0]) if first_human else None,
            "first_human_action_by": who(first_human[1]) if first_human else None,
            "mitigated_at": _iso(mitigated),
            "resolved_at": _iso(resolved),
            "measured_from": "first_alert" if first_alert else "opened_at",
            "drills": [format_rollback_id(d) for d in sorted(drills)],
        },
        "metrics": {
            "time_to_acknowledge_seconds": _seconds(start, first_human[0]) if first_human else None,
            "time_to_mitigate_seconds": _seconds(start, mitigated),
            "time_to_resolve_seconds": _seconds(start, resolved),
        },
        "rollbacks": [_rollback(r, steps[r.id], step_counts[r.id], who) for r in rollbacks],
        "notes": notes,
        "people": [who(p) for p in sorted(people)],
        "follow_ups": follow_ups(gitops),
    }
    marks = collector.marks(
        first_human=first_human, mitigated=mitigated, resolved=resolved, name_of=name_of
    )
    return Postmortem(head=head, events=events, drills=drills, names=name_of, marks=marks)


_MITIGATED, _RESOLVED, _NOTE, _GITOPS = 1, 2, 3, 4


def _of_kind(kind: str) -> tuple[bool, int, bool]:
    """What the analysis does with an event of ``kind``: (is it an alert firing, which of
    the few kinds read for more than the picture and the steps (0: none), is it a step)."""
    special = 0
    if kind == "incident.mitigated":
        special = _MITIGATED
    elif kind == "incident.resolved":
        special = _RESOLVED
    elif kind.startswith("note"):
        special = _NOTE
    elif kind.startswith("gitops."):
        special = _GITOPS
    return kind == "alert.firing", special, kind.startswith(_STEP_KINDS)


def _severity(alerts: Sequence[AlertInfo]) -> str | None:
    if not alerts:
        return None
    return min((a.severity for a in alerts), key=lambda s: _SEVERITY_ORDER.get(s.lower(), 9))


def _trigger(alerts: Sequence[AlertInfo], rollbacks: Sequence[RollbackInfo]) -> str:
    if alerts:
        first = min(alerts, key=lambda a: a.first_seen)
        return f"alert {first.alertname} ({first.severity})"
    if rollbacks:
        first_rollback = min(rollbacks, key=lambda r: r.id)
        how = "automatic" if first_rollback.automatic else "manual"
        return f"{how} rollback request by {first_rollback.requested_by}"
    return "unknown"


def _outcome(incident: IncidentLike, real: Sequence[RollbackInfo], mitigated: Any) -> str:
    done = [r for r in real if r.state == "done"]
    if done:
        how = f"rolled back by {', '.join(format_rollback_id(r.id) for r in done)}"
    elif real:
        how = "rollback " + ", ".join(f"{format_rollback_id(r.id)} {r.state}" for r in real)
    else:
        how = "no rollback"
    if incident.state == "resolved":
        return f"resolved ({how})"
    if incident.state == "mitigated" or mitigated is not None:
        return f"mitigated ({how})"
    return f"open ({how})"


def _rollback(
    r: RollbackInfo,
    steps: list[tuple[datetime, str, str, str]],
    count: int,
    who: Callable[[str | None], dict[str, Any] | None],
) -> dict[str, Any]:
    rows = []
    for i, (at, kind, actor, summary) in enumerate(steps[:STEP_LIMIT]):
        end = steps[i + 1][0] if i + 1 < len(steps) else r.finished_at
        rows.append(
            {
                "at": at.isoformat(),
                "kind": kind,
                "actor": actor,
                "summary": summary,
                "duration_seconds": _seconds(at, end) if end and end >= at else None,
            }
        )
    return {
        "id": format_rollback_id(r.id),
        "strategy": r.strategy,
        "state": r.state,
        "drill": r.drill,
        "automatic": r.automatic,
        "reason": r.reason,
        "requested_by": who(r.requested_by),
        "approvals": [
            {"by": who(a.actor), "decision": a.decision, "at": a.at.isoformat(), "reason": a.reason}
            for a in r.approvals
        ],
        "changed": {
            "from_revision": r.from_revision,
            "to_revision": r.to_revision,
            "from_image": r.from_image,
            "to_image": r.to_image,
            "changes": list(r.changes),
        },
        "started_at": _iso(r.created_at),
        "finished_at": _iso(r.finished_at),
        "duration_seconds": _seconds(r.created_at, r.finished_at) if r.created_at else None,
        "error": r.error,
        "steps": rows,
        "steps_omitted": max(0, count - STEP_LIMIT),
    }


# -- the document as a dict (tests, the schema) ---------------------------------------------


def document(pm: Postmortem) -> dict[str, Any]:
    return {**pm.head, "timeline": list(pm.timeline())}


def build(
    incident: IncidentLike,
    events: Sequence[Any],
    *,
    rollbacks: Sequence[RollbackInfo] = (),
    alerts: Sequence[AlertInfo] = (),
    context: Context | None = None,
    names: Names | None = None,
) -> dict[str, Any]:
    return document(
        analyse(incident, events, rollbacks=rollbacks, alerts=alerts, context=context, names=names)
    )


# -- renderers: each yields chunks ------------------------------------------------------------


def iter_json(pm: Postmortem, *, pretty: bool = False) -> Iterator[str]:
    """Compact JSON by default (CPython's C encoder); ``pretty`` indents (the slow encoder)."""
    if pretty:
        yield json.dumps(document(pm), indent=2) + "\n"
        return
    yield from _json_chunks(pm, None)


def _json_chunks(pm: Postmortem, units: _Units | None) -> Iterator[str]:
    """The compact JSON in chunks; ``units`` (when given) is handed every part of it that
    is not one of the delimiters ``_JSON_DELIMITERS`` (see :func:`export`)."""
    head = json.dumps(pm.head, separators=(",", ":"))[:-1] + ',"timeline":['
    if units is not None:  # before each chunk goes out: the batch may be released then
        units.row(head)
        units.piece(_ROW_START)
        units.piece(_END)
    yield head
    # Rows by hand with the C string encoder: the same bytes json.dumps would write,
    # without building a dict per event (and ``data`` spliced in as stored). Actors, kinds
    # and rollbacks are few: the text around the time and the summary is encoded once per
    # combination. Rows go out 256 at a time (each chunk whole rows, for the redactor).
    enc = json.encoder.encode_basestring_ascii
    names, drills = pm.names, pm.drills
    middles: dict[tuple[str, str], str] = {}
    tails: dict[int | None, str] = {}
    rows: list[str] = []
    sep = ""
    for e in pm.events:
        actor, kind, rid = e.actor, e.kind, e.rollback_id
        middle = middles.get((actor, kind))
        if middle is None:
            name = names.get(actor)
            middle = middles[(actor, kind)] = (
                f'","actor":{enc(actor)},"actor_name":{enc(name) if name else "null"},'
                f'"kind":{enc(kind)},"summary":'
            )
            if units is not None:
                units.piece(middle)
        tail = tails.get(rid)
        if tail is None:
            tail = tails[rid] = (
                f',"rollback":{f"{_QUOTE}R-{rid}{_QUOTE}" if rid else "null"},'
                f'"drill":{"true" if rid and rid in drills else "false"},"data":'
            )
            if units is not None:
                units.piece(tail)
        try:
            data = e.data_json  # the loader's events: the text as stored
        except AttributeError:
            data = _data_json(e)
        at = iso_time(e)
        summary = enc(e.summary)
        rows.append(f"{sep}{_ROW_START}{at}{middle}{summary}{tail}{data}}}")
        if units is not None:
            units.row(f"{at}{summary}{data}")
        sep = ",\n"
        if len(rows) == 256:
            yield "".join(rows)
            rows = []
    if rows:
        yield "".join(rows)
    yield _END


_ROW_START = '{"at":"'
_END = "]}\n"
#: Every character of the compact JSON that is not part of a value, a time or one of the
#: writer's pieces (``_ROW_START``, ``_END``, the text around the time and the summary).
_JSON_DELIMITERS = '":,{}[]\n'


class _Units:
    """The parts of a JSON batch the redactor must clear for the batch to go out as written.

    Each run of characters other than ``_JSON_DELIMITERS`` in the compact JSON lies within
    one part: the head, a row's time, summary (with its quotes) or ``data`` (between ``:``
    and ``}``), or a piece (the writer's own text, built once, used by many rows). When no
    gate hint can hold a delimiter (``Redactor.hints_stop_at``), a batch whose rows and
    every piece so far hold no hint holds none either, and redacting it changes nothing;
    otherwise the batch is redacted whole, as :func:`redacted` does.
    """

    def __init__(self, redactor: Any) -> None:
        self.redactor = redactor
        self.rows: list[str] = []
        self.pieces_clear = True

    def piece(self, text: str) -> None:
        if self.pieces_clear and self.redactor.may_change(text):
            self.pieces_clear = False

    def row(self, text: str) -> None:
        self.rows.append(text)

    def release(self, batch: str) -> str:
        parts = '"'.join(self.rows)
        self.rows.clear()
        if self.pieces_clear and not self.redactor.may_change(parts):
            return batch
        return str(self.redactor.text(batch))


_QUOTE = '"'


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def person(ref: Mapping[str, Any] | None, fallback: str = "") -> str:
    if not ref:
        return fallback
    return f"{ref['name']} ({ref['id']})" if ref.get("name") else str(ref["id"])


def actor_label(actor: str, name: str | None) -> str:
    return f"{name} ({actor})" if name else actor


def iter_markdown(pm: Postmortem) -> Iterator[str]:
    from rollback_bot.incidents import postmortem_picture as picture

    head = pm.head
    inc, s, metrics = head["incident"], head["summary"], head["metrics"]
    ack_by = inc["acknowledged_by"]
    lines = [
        f"# Postmortem {inc['id']}: {inc['title']}",
        "",
        f"- Service: `{inc['service']}`",
        f"- Environment: {s['environment'] or 'unknown'}",
        f"- Cluster: {s['cluster'] or 'default'}",
        f"- Severity: {s['severity'] or 'none (no alert)'}",
        f"- Trigger: {s['trigger']}",
        f"- Outcome: {s['outcome']}",
        f"- State: {inc['state']}",
        f"- Opened: {inc['opened_at']}",
        f"- First alert: {s['first_alert_at'] or 'none'}",
        f"- Acknowledged: {inc['acknowledged_at'] or 'never'}"
        + (f" by {actor_label(ack_by, pm.names.get(ack_by))}" if ack_by else ""),
        f"- Mitigated: {s['mitigated_at'] or 'not yet'}",
        f"- Resolved: {s['resolved_at'] or 'not yet'}",
    ]
    if s["drills"]:
        lines.append(f"- Drills (marked, never counted): {', '.join(s['drills'])}")
    lines += [
        "",
        "## Metrics",
        "",
        f"Measured from the {'first alert' if s['measured_from'] == 'first_alert' else 'opening'}"
        "; drills are not counted.",
        "",
        f"- Time to acknowledge: {human_duration(metrics['time_to_acknowledge_seconds'])}"
        + (
            f" (first action by {person(s['first_human_action_by'])})"
            if s["first_human_action_by"]
            else ""
        ),
        f"- Time to mitigate: {human_duration(metrics['time_to_mitigate_seconds'])}",
        f"- Time to resolve: {human_duration(metrics['time_to_resolve_seconds'])}",
        "",
        "## The incident on one time axis",
        "",
        "```mermaid",
        picture.mermaid(pm.marks, title=f"{inc['id']} {inc['service']}"),
        "```",
        "",
        "## Rollbacks",
        "",
    ]
    if not head["rollbacks"]:
        lines += ["No rollback.", ""]
    for r in head["rollbacks"]:
        lines += _markdown_rollback(r)
    lines += ["## Notes", ""]
    if not head["notes"]:
        lines += ["No notes were added.", ""]
    for n in head["notes"]:
        link = f" ([message]({n['permalink']}))" if n.get("permalink") else ""
        who = actor_label(n["actor"], pm.names.get(n["actor"]))
        lines.append(f"- {n['at']} {who}: {_cell(n['text'])}{link}")
    if head["notes"]:
        lines.append("")
    lines += [
        "## What went wrong / follow-ups",
        "",
        "_To be filled in by the team._",
        "",
        "- What went wrong:",
        "- What went well:",
        "- [ ] Root cause",
        "- [ ] Fix forward or revert in Git",
        *(f"- [ ] {_cell(item)}" for item in head["follow_ups"]),
        "",
        "## Timeline",
        "",
        "| Time (UTC) | Actor | Event | Rollback | Summary |",
        "|---|---|---|---|---|",
        "",
    ]
    yield "\n".join(lines)
    # The cells between the time and the summary are encoded once per actor, kind and
    # rollback (few, many events); rows go out 256 at a time (whole rows, for the redactor).
    names, drills = pm.names, pm.drills
    middles: dict[tuple[str, str, int | None], str] = {}

    def rows() -> Iterator[str]:
        for e in pm.events:
            actor, kind, rid = e.actor, e.kind, e.rollback_id
            middle = middles.get((actor, kind, rid))
            if middle is None:
                rb = "" if not rid else (f"R-{rid} (drill)" if rid in drills else f"R-{rid}")
                name = names.get(actor)
                label = f"{name} ({actor})" if name else actor
                if "|" in label or "\n" in label:
                    label = _cell(label)
                middle = middles[(actor, kind, rid)] = f" | {label} | {kind} | {rb} | "
            summary = e.summary
            if "|" in summary or "\n" in summary:
                summary = _cell(summary)
            yield f"| {iso_time(e)}{middle}{summary} |\n"

    yield from in_chunks(rows())


def iso_time(event: Any) -> str:
    """An event's time as ISO text; the loader's events carry it, written once when read."""
    iso = getattr(event, "iso", None)
    return str(iso) if iso is not None else str(event.at.isoformat())


def in_chunks(rows: Iterable[str], size: int = 256) -> Iterator[str]:
    """Whole rows joined ``size`` at a time: one write (and one redaction batch) per chunk."""
    chunk: list[str] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def _markdown_rollback(r: dict[str, Any]) -> list[str]:
    c = r["changed"]
    title = f"### {r['id']}: {r['strategy']}, {r['state']}"
    if r["drill"]:
        title += " (DRILL, not counted)"
    lines = [
        title,
        "",
        f"- Requested by: {person(r['requested_by'])}"
        + (" (automatic)" if r["automatic"] else "")
        + (f", reason: {_cell(r['reason'])}" if r["reason"] else ""),
        "- Approvals: "
        + (
            ", ".join(
                f"{a['decision']} by {person(a['by'])} at {a['at']}"
                + (f" ({_cell(a['reason'])})" if a.get("reason") else "")
                for a in r["approvals"]
            )
            or "none"
        ),
        f"- Revision: {c['from_revision'] or '?'} -> {c['to_revision'] or '?'}",
        f"- Image: {c['from_image'] or '?'} -> {c['to_image'] or '?'}",
        f"- Duration: {human_duration(r['duration_seconds'])}",
    ]
    if r["error"]:
        lines.append(f"- Error: {_cell(r['error'])}")
    if c["changes"]:
        lines += ["", "What changed:", "", "```diff"]
        lines += [_diff_line(line) for line in c["changes"]]
        lines.append("```")
    if r["steps"]:
        lines += ["", "| Step (UTC) | Event | By | Took | Summary |", "|---|---|---|---|---|"]
        for st in r["steps"]:
            lines.append(
                f"| {st['at']} | {st['kind']} | {st['actor']} "
                f"| {human_duration(st['duration_seconds'])} | {_cell(st['summary'])} |"
            )
        if r.get("steps_omitted"):
            lines += ["", f"…and {r['steps_omitted']} more steps: see the timeline."]
    lines.append("")
    return lines


def _diff_line(line: str) -> str:
    text = line.replace("```", "'''")
    return text if text[:1] in "+-~ " else f"  {text}"


def iter_render(pm: Postmortem, fmt: str, *, pretty: bool = False) -> Iterator[str]:
    if fmt == "json":
        return iter_json(pm, pretty=pretty)
    if fmt == "md":
        return iter_markdown(pm)
    if fmt == "html":
        from rollback_bot.incidents import postmortem_html

        return postmortem_html.iter_html(pm)
    raise ValueError(f"unknown format {fmt!r}: use md, json or html")


# -- the old entry points, on a document dict -------------------------------------------------


class _DocEvent:
    __slots__ = ("actor", "at", "data", "kind", "rollback_id", "summary")

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.at = datetime.fromisoformat(row["at"])
        self.actor = row["actor"]
        self.kind = row["kind"]
        self.summary = row["summary"]
        rb = row.get("rollback")
        self.rollback_id = int(rb.split("-")[1]) if rb else None
        self.data = row.get("data") or {}


def _from_document(doc: dict[str, Any]) -> Postmortem:
    from rollback_bot.incidents import postmortem_picture as picture

    head = {k: v for k, v in doc.items() if k != "timeline"}
    events = [_DocEvent(e) for e in doc.get("timeline", [])]
    names = {e["actor"]: e["actor_name"] for e in doc["timeline"] if e.get("actor_name")}
    drills = frozenset(int(d.split("-")[1]) for d in head.get("summary", {}).get("drills", []))
    collector = picture.Collector(drills)
    for event in events:
        collector.add(event)
    summary = head.get("summary", {})

    def at(key: str) -> datetime | None:
        value = summary.get(key)
        return datetime.fromisoformat(value) if value else None

    first = at("first_human_action_at")
    by = summary.get("first_human_action_by") or {}
    marks = collector.marks(
        first_human=(first, by.get("id", "")) if first else None,
        mitigated=at("mitigated_at"),
        resolved=at("resolved_at"),
        name_of=names,
    )
    return Postmortem(head=head, events=events, drills=drills, names=names, marks=marks)


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def to_markdown(doc: dict[str, Any]) -> str:
    return "".join(iter_markdown(_from_document(doc)))


def render(doc: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return to_json(doc)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use md, json or html")
    return "".join(iter_render(_from_document(doc), fmt))


def export(pm: Postmortem, fmt: str, *, pretty: bool = False) -> Iterator[str]:
    """The export as written to a file or uploaded: rendered in ``fmt``, then redacted.

    The same text as ``redacted(iter_render(pm, fmt, pretty=pretty))``. Compact JSON is
    more than half keys, times and ``data``; its batches go out as written when no gate
    hint is in any of their parts (``_Units``), without scanning the text around them.
    """
    if fmt != "json" or pretty:
        return redacted(iter_render(pm, fmt, pretty=pretty))
    from rollback_bot.redaction import current

    redactor = current()
    if not redactor.hints_stop_at(_JSON_DELIMITERS):
        return redacted(iter_json(pm))
    return _released(pm, _Units(redactor))


def _released(pm: Postmortem, units: _Units, *, batch: int = 1 << 16) -> Iterator[str]:
    pending: list[str] = []
    size = 0
    for chunk in _json_chunks(pm, units):  # the batches of redacted()
        pending.append(chunk)
        size += len(chunk)
        if size >= batch:
            yield units.release("".join(pending))
            pending, size = [], 0
    if pending:
        yield units.release("".join(pending))


def redacted(chunks: Iterable[str], *, batch: int = 1 << 16) -> Iterator[str]:
    """The timeline is redacted when written; the export is redacted again, whole, in
    batches of whole chunks (each chunk is whole rows, so a secret never straddles two)."""
    from rollback_bot.redaction import redact_text

    pending: list[str] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= batch:
            yield redact_text("".join(pending))
            pending, size = [], 0
    if pending:
        yield redact_text("".join(pending))
