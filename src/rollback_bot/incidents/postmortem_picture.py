"""The incident on one time axis: alerts, acknowledgement, approvals, rollback steps,
health checks, mitigation and resolution.

One pure model (``Mark``: a lane, a label, a start and, for a span, an end) drawn three
ways: a Mermaid ``gantt`` for the Markdown (GitHub and GitLab render it), inline SVG for
the HTML page, and a PNG for Slack (Pillow, imported only then; no browser, no network).
Each lane keeps at most ``PER_LANE`` marks; the rest become one "+N more" span, so a
storm of health checks draws as a readable picture, not ten thousand rows.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any

from rollback_bot.ids import format_rollback_id
from rollback_bot.redaction import redact_text

PER_LANE = 12

# Lanes, top to bottom (a lane per rollback is added after "People").
ALERTS, PEOPLE, HEALTH, CLUSTER, INCIDENT = "Alerts", "People", "Health", "Cluster", "Incident"

TONES = {
    "alert": "#d9534f",
    "person": "#3f7fd9",
    "rollback": "#f0ad4e",
    "health": "#4cae4c",
    "bad": "#b52b27",
    "incident": "#6c757d",
    "ok": "#2e7d32",
    "drill": "#9e9e9e",
    "more": "#bdbdbd",
}

_ROLLBACK_STATES = frozenset(
    {
        "rollback.requested",
        "rollback.scheduled",
        "rollback.approved",
        "rollback.executing",
        "rollback.paused",
        "rollback.verifying",
    }
)
_ROLLBACK_ENDS = {
    "rollback.done": "ok",
    "rollback.failed": "bad",
    "rollback.aborted": "bad",
    "rollback.denied": "bad",
    "rollback.expired": "bad",
}


@dataclass(frozen=True)
class Mark:
    lane: str
    label: str
    start: datetime
    end: datetime | None = None  # None: a moment (a milestone)
    tone: str = "incident"


class Collector:
    """Fed the events one by one (during the postmortem's single pass)."""

    def __init__(self, drills: frozenset[int]) -> None:
        self._drills = drills
        self._lanes: dict[str, list[Mark]] = {}
        self._extra: dict[str, list[datetime]] = {}
        self._first_alert: datetime | None = None
        self._last_alert_resolved: datetime | None = None
        self._opened: datetime | None = None
        self._last: datetime | None = None
        self._open_state: dict[int, tuple[str, datetime]] = {}
        self._rollback_lanes: list[str] = []
        self._with_rollback: dict[str, tuple[int, str | None, bool]] = {}
        self._without: dict[str, tuple[int, str | None, bool]] = {}

    def _lane_of(self, rid: int) -> str:
        lane = format_rollback_id(rid) + (" (drill)" if rid in self._drills else "")
        if lane not in self._rollback_lanes:
            self._rollback_lanes.append(lane)
        return lane

    def _put(self, mark: Mark) -> None:
        marks = self._lanes.setdefault(mark.lane, [])
        if len(marks) < PER_LANE:
            marks.append(mark)
        else:
            self._extra.setdefault(mark.lane, []).append(mark.start)

    def add(self, e: Any) -> None:
        at, kind, rid = e.at, e.kind, e.rollback_id
        last = self._last
        if last is None or at > last:
            self._last = at
        of_kind = (self._with_rollback if rid else self._without).get(kind)
        if of_kind is None:  # few kinds, many events: decided once per kind
            of_kind = _of_kind(kind, bool(rid))
            (self._with_rollback if rid else self._without)[kind] = of_kind
        moment, lane, step = of_kind
        if moment:
            if moment == _FIRING:
                if self._first_alert is None or at < self._first_alert:
                    self._first_alert = at
            elif moment == _RESOLVED:
                self._last_alert_resolved = at
            elif self._opened is None:
                self._opened = at
        if lane is not None:
            extra = self._extra.get(lane)
            if extra is not None:  # the lane is full (marks are never taken back)
                extra.append(at)
            else:
                marks = self._lanes.setdefault(lane, [])
                if len(marks) < PER_LANE:  # labels only for what is drawn
                    marks.append(self._mark(lane, e, bool(rid and rid in self._drills)))
                else:
                    self._extra[lane] = [at]
        if step:
            self._rollback_step(rid, kind, at, rid in self._drills)

    def _mark(self, lane: str, e: Any, drill: bool) -> Mark:
        kind, at = e.kind, e.at
        if lane == ALERTS:
            return Mark(
                lane, _short(e.summary), at, tone="alert" if kind == "alert.firing" else "ok"
            )
        if lane == HEALTH:
            failed = kind == "health.failed" or bool(_FAILED_CHECK.search(e.summary))
            tone = "drill" if drill else _health(failed)
            if ": not checked" in e.summary:
                tone = "more"  # grey: nothing was learnt
            return Mark(lane, _short(e.summary), at, tone=tone)
        if lane == CLUSTER:
            return Mark(lane, _short(e.summary), at, tone="bad")
        if kind.startswith("note"):
            return Mark(lane, f"note by {e.actor}", at, tone="person")
        verb = "denied" if kind == "rollback.denied" else "approved"
        tone = "drill" if drill else ("bad" if verb == "denied" else "person")
        return Mark(lane, f"{format_rollback_id(e.rollback_id)} {verb} by {e.actor}", at, tone=tone)

    def _rollback_step(self, rid: int, kind: str, at: datetime, drill: bool) -> None:
        lane = self._lane_of(rid)
        previous = self._open_state.pop(rid, None)
        if previous is not None:
            state, since = previous
            self._put(Mark(lane, state, since, at, tone="drill" if drill else "rollback"))
        if kind in _ROLLBACK_STATES:
            self._open_state[rid] = (kind.removeprefix("rollback."), at)
        else:
            tone = "drill" if drill else _ROLLBACK_ENDS[kind]
            self._put(Mark(lane, kind.removeprefix("rollback."), at, tone=tone))

    def marks(
        self,
        *,
        first_human: tuple[datetime, str] | None,
        mitigated: datetime | None,
        resolved: datetime | None,
        name_of: dict[str, str],
    ) -> list[Mark]:
        end = (
            max(t for t in (self._last, mitigated, resolved) if t is not None)
            if (self._last or mitigated or resolved)
            else None
        )
        out: list[Mark] = []
        if self._first_alert is not None:
            until = self._last_alert_resolved or resolved or end
            out.append(Mark(ALERTS, "alerts firing", self._first_alert, until, tone="alert"))
        if first_human is not None:
            at, who = first_human
            out.append(Mark(PEOPLE, f"acknowledged by {name_of.get(who, who)}", at, tone="person"))
        lanes = [ALERTS, PEOPLE, *self._rollback_lanes, HEALTH, CLUSTER]
        for rid_lane_state in list(self._open_state.items()):
            rid, (state, since) = rid_lane_state
            lane = self._lane_of(rid)
            if end is not None and end > since:
                self._put(Mark(lane, state, since, end, tone="rollback"))
        for lane in lanes:
            for mark in self._lanes.get(lane, []):
                out.append(_rename(mark, name_of))
            extra = self._extra.get(lane)
            if extra:
                out.append(Mark(lane, f"+{len(extra)} more", min(extra), max(extra), tone="more"))
        start = self._first_alert or self._opened
        if start is not None:
            out.append(Mark(INCIDENT, "incident", start, resolved or end, tone="incident"))
        if mitigated is not None:
            out.append(Mark(INCIDENT, "mitigated", mitigated, tone="ok"))
        if resolved is not None:
            out.append(Mark(INCIDENT, "resolved", resolved, tone="ok"))
        return out


def _health(failed: bool) -> str:
    return "bad" if failed else "health"


_APPROVAL_KINDS = frozenset({"rollback.approved", "rollback.approval", "rollback.denied"})


_FIRING, _RESOLVED, _OPENED = 1, 2, 3


def _of_kind(kind: str, of_rollback: bool) -> tuple[int, str | None, bool]:
    """What :meth:`Collector.add` does with an event of ``kind`` (on a rollback or not):
    the moment it is (0: none), its lane, whether it is a step of the rollback's life."""
    moment = {"alert.firing": _FIRING, "alert.resolved": _RESOLVED, "incident.opened": _OPENED}
    step = of_rollback and (kind in _ROLLBACK_STATES or kind in _ROLLBACK_ENDS)
    return moment.get(kind, 0), _lane_for(kind, 1 if of_rollback else None), step


def _lane_for(kind: str, rid: int | None) -> str | None:
    if kind in ("alert.firing", "alert.resolved"):
        return ALERTS
    if kind.startswith("health."):
        return HEALTH
    if kind.startswith("note") or (rid and kind in _APPROVAL_KINDS):
        return PEOPLE
    if kind == "kube.manual_change":
        return CLUSTER
    return None


_FAILED_CHECK = re.compile(r": (?:fail|failed|failing|bad)\b")
_PERSON_IN_LABEL = re.compile(r"\b([UW][A-Z0-9]{2,})\b")


def _rename(mark: Mark, name_of: dict[str, str]) -> Mark:
    if mark.lane != PEOPLE or not name_of:
        return mark
    label = _PERSON_IN_LABEL.sub(lambda m: name_of.get(m.group(1), m.group(1)), mark.label)
    return Mark(mark.lane, label, mark.start, mark.end, mark.tone)


def _short(text: str, limit: int = 48) -> str:
    # Pictures cannot be redacted once drawn: their words are, before.
    text = " ".join(redact_text(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lanes_of(marks: Sequence[Mark]) -> list[str]:
    seen: list[str] = []
    for m in marks:
        if m.lane not in seen:
            seen.append(m.lane)
    return seen


# -- Mermaid ----------------------------------------------------------------------------------

_MERMAID_UNSAFE = re.compile(r"[:;#\n\r`]")


def _mermaid_text(text: str) -> str:
    return _MERMAID_UNSAFE.sub(" ", text).strip() or "-"


def _mermaid_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def mermaid(marks: Sequence[Mark], *, title: str) -> str:
    """A Mermaid ``gantt`` chart (without the fence)."""
    lines = [
        "gantt",
        f"    title {_mermaid_text(title)}",
        "    dateFormat YYYY-MM-DD HH:mm:ss",
        "    axisFormat %H:%M:%S",
    ]
    tags = {"alert": "crit, ", "bad": "crit, ", "ok": "done, ", "rollback": "active, "}
    for lane in lanes_of(marks):
        lines.append(f"    section {_mermaid_text(lane)}")
        for m in marks:
            if m.lane != lane:
                continue
            label = _mermaid_text(m.label)
            if m.end is None:
                lines.append(f"    {label} :milestone, {_mermaid_time(m.start)}, 0s")
            else:
                seconds = max(1, round((m.end - m.start).total_seconds()))
                tag = tags.get(m.tone, "")
                lines.append(f"    {label} :{tag}{_mermaid_time(m.start)}, {seconds}s")
    return "\n".join(lines)


# -- layout shared by SVG and PNG -------------------------------------------------------------

WIDTH, GUTTER, RIGHT, TOP, ROW, AXIS = 1000, 150, 30, 36, 20, 34


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    title: str
    lanes: list[tuple[str, int, int]]  # name, y, height
    items: list[tuple[Mark, float, float, int]]  # mark, x1, x2 (== x1 for a moment), y
    ticks: list[tuple[float, str]]


def layout(marks: Sequence[Mark], *, title: str) -> Layout:
    times = [m.start for m in marks] + [m.end for m in marks if m.end is not None]
    t0 = min(times) if times else datetime(1970, 1, 1)
    t1 = max(times) if times else t0
    if (t1 - t0).total_seconds() < 60:
        t1 = t0 + timedelta(seconds=60)
    span = (t1 - t0).total_seconds()
    plot = WIDTH - GUTTER - RIGHT

    def x(at: datetime) -> float:
        return GUTTER + plot * (at - t0).total_seconds() / span

    lanes, items, y = [], [], TOP
    for lane in lanes_of(marks):
        rows = [m for m in marks if m.lane == lane]
        lanes.append((lane, y, ROW * len(rows) + 6))
        for i, m in enumerate(rows):
            x1 = x(m.start)
            x2 = x(m.end) if m.end is not None else x1
            items.append((m, x1, x2, y + 3 + i * ROW))
        y += ROW * len(rows) + 6
    step = _tick_step(span)
    ticks = []
    first = t0.replace(microsecond=0)
    k = 0
    while True:
        at = first + timedelta(seconds=step * k)
        if at > t1:
            break
        if at >= t0:
            ticks.append((x(at), at.strftime("%H:%M:%S")))
        k += 1
    return Layout(WIDTH, y + AXIS, title, lanes, items, ticks)


def _tick_step(span: float) -> int:
    for step in (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400):
        if span / step <= 8:
            return step
    return 86400 * max(1, int(span / 86400 / 8))


# -- SVG --------------------------------------------------------------------------------------


def svg(marks: Sequence[Mark], *, title: str) -> str:
    lay = layout(marks, title=title)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" '
        f'width="{lay.width}" height="{lay.height}" viewBox="0 0 {lay.width} {lay.height}" '
        f'font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="8" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (name, y, h) in enumerate(lay.lanes):
        fill = "#f7f7f7" if i % 2 == 0 else "#ffffff"
        out.append(
            f'<g class="lane" data-lane="{escape(name)}">'
            f'<rect x="0" y="{y}" width="{lay.width}" height="{h}" fill="{fill}"/>'
            f'<text x="8" y="{y + 15}" font-weight="bold">{escape(name)}</text></g>'
        )
    axis_y = lay.height - AXIS + 4
    for tx, label in lay.ticks:
        out.append(
            f'<line x1="{tx:.1f}" y1="{TOP}" x2="{tx:.1f}" y2="{axis_y}" stroke="#dddddd"/>'
            f'<text x="{tx:.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#555">'
            f"{label}</text>"
        )
    for m, x1, x2, y in lay.items:
        colour = TONES.get(m.tone, "#777")
        tip = f"{m.label} at {m.start.isoformat()}" + (
            f" until {m.end.isoformat()}" if m.end else ""
        )
        if m.end is None:
            cx, cy = x1, y + 7
            out.append(
                f'<g class="mark milestone" data-tone="{m.tone}"><title>{escape(tip)}</title>'
                f'<polygon points="{cx:.1f},{cy - 6} {cx + 6:.1f},{cy} {cx:.1f},{cy + 6} '
                f'{cx - 6:.1f},{cy}" fill="{colour}"/>'
                f'<text x="{cx + 9:.1f}" y="{cy + 4}">{escape(m.label)}</text></g>'
            )
        else:
            w = max(2.0, x2 - x1)
            out.append(
                f'<g class="mark span" data-tone="{m.tone}"><title>{escape(tip)}</title>'
                f'<rect x="{x1:.1f}" y="{y + 1}" width="{w:.1f}" height="12" rx="2" '
                f'fill="{colour}"/>'
                f'<text x="{x1 + w + 4:.1f}" y="{y + 11}">{escape(m.label)}</text></g>'
            )
    out.append("</svg>")
    return "\n".join(out)


# -- PNG (Pillow) -----------------------------------------------------------------------------


def png(marks: Sequence[Mark], *, title: str) -> bytes:
    """The same picture as a PNG, drawn with Pillow (no browser, no network)."""
    from PIL import Image, ImageDraw, ImageFont

    lay = layout(marks, title=title)
    scale = 2  # crisp on high-density screens
    image = Image.new("RGB", (lay.width * scale, lay.height * scale), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=11 * scale)
    bold = ImageFont.load_default(size=14 * scale)

    def s(v: float) -> float:
        return v * scale

    draw.text((s(8), s(8)), title, fill="black", font=bold)
    for i, (name, y, h) in enumerate(lay.lanes):
        fill = "#f7f7f7" if i % 2 == 0 else "#ffffff"
        draw.rectangle((0, s(y), s(lay.width), s(y + h)), fill=fill)
        draw.text((s(8), s(y + 4)), name, fill="black", font=font)
    axis_y = lay.height - AXIS + 4
    for tx, label in lay.ticks:
        draw.line((s(tx), s(TOP), s(tx), s(axis_y)), fill="#dddddd", width=scale)
        draw.text((s(tx), s(axis_y + 8)), label, fill="#555555", font=font, anchor="mm")
    for m, x1, x2, y in lay.items:
        colour = TONES.get(m.tone, "#777777")
        if m.end is None:
            cx, cy = s(x1), s(y + 7)
            r = s(6)
            draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
            draw.text((cx + s(9), cy), m.label, fill="black", font=font, anchor="lm")
        else:
            w = max(2.0, x2 - x1)
            draw.rounded_rectangle(
                (s(x1), s(y + 1), s(x1 + w), s(y + 13)), radius=s(2), fill=colour
            )
            draw.text((s(x1 + w + 4), s(y + 7)), m.label, fill="black", font=font, anchor="lm")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
