"""One alert model for every sender.

Alertmanager, Grafana and hand-written integrations each describe "something
is wrong with a service" in their own JSON. Everything downstream (catalog
matching, trigger rules, the Slack message, the incident timeline) works on
the single ``Alert`` defined here, so the differences between senders stay in
this module.

Parsing is pure: no I/O and no clock reads unless the caller leaves out
``received_at``. A broken payload raises ``AlertPayloadError`` naming the field
path (``alerts[3].labels: expected an object``) and nothing else, so the HTTP
layer can always answer 4xx: Alertmanager retries 5xx forever, and a payload
that is wrong today is wrong on every retry.

The parsers are liberal where real senders differ (``endsAt`` missing or the
Go zero time ``0001-01-01T00:00:00Z`` for "unset", ``Z`` or numeric offsets,
nanosecond fractions, numbers as label values) and strict where meaning would
be lost (an alert with no name, an unknown status, a timestamp with no
timezone, a value that is not a number).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

AlertSource = Literal["alertmanager", "grafana", "generic", "query"]
AlertStatus = Literal["firing", "resolved"]

DEFAULT_SEVERITY = "warning"

# Annotation keys that carry a runbook link, in order of preference.
_RUNBOOK_KEYS = ("runbook_url", "runbook")

# Per-alert URL fields of each sender and the link name they become.
_ALERTMANAGER_LINKS = {"generatorURL": "generator"}
_GRAFANA_LINKS = {
    "dashboardURL": "dashboard",
    "panelURL": "panel",
    "silenceURL": "silence",
    "generatorURL": "generator",
}

_TIMESTAMP = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<frac>\d+))?(?P<tz>[Zz]|[+-]\d{2}:?\d{2})?$"
)


class AlertPayloadError(ValueError):
    """The payload cannot be understood; the message starts with the field path."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class Alert:
    """One alert, whatever sent it.

    ``value`` is the single number the alert is about when the sender gives
    one (the generic ``value``, or an Alertmanager ``value`` annotation);
    ``values`` holds named numbers (Grafana refIds). ``service_hint`` is the
    service the sender named explicitly (generic ``service``, or a
    ``service`` label); the catalog ``match`` still decides.
    """

    source: AlertSource
    fingerprint: str
    name: str
    status: AlertStatus
    severity: str
    labels: dict[str, str] = field(hash=False)
    annotations: dict[str, str] = field(hash=False)
    starts_at: datetime
    ends_at: datetime | None = None
    value: float | None = None
    values: dict[str, float] = field(default_factory=dict, hash=False)
    links: dict[str, str] = field(default_factory=dict, hash=False)
    service_hint: str | None = None
    # True when the sender gave no start time and ``starts_at`` is the receipt
    # time; it is then left out of ``payload_hash`` so a retried delivery of
    # the same payload still hashes the same.
    start_inferred: bool = False

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (timestamps in ISO 8601 UTC), for storage and logs."""
        return {
            "source": self.source,
            "fingerprint": self.fingerprint,
            "name": self.name,
            "status": self.status,
            "severity": self.severity,
            "labels": dict(sorted(self.labels.items())),
            "annotations": dict(sorted(self.annotations.items())),
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "value": _json_number(self.value),
            "values": {k: _json_number(v) for k, v in sorted(self.values.items())},
            "links": dict(sorted(self.links.items())),
            "service_hint": self.service_hint,
        }

    def payload_hash(self) -> str:
        """Same content, same hash: a redelivered webhook is recognised as a repeat.

        Everything that could change what the bot shows or decides is included
        (status, end time, values, annotations), so a resolution or a new value
        is never mistaken for a repeat.
        """
        content = self.as_dict()
        if self.start_inferred:
            del content["starts_at"]
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit identity for a label set (order does not matter)."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


# --- the body ------------------------------------------------------------------

MAX_DEPTH = 32  # no sender nests deeper than a handful of levels
MAX_INT = 2**63  # beyond a 64-bit integer a number is no label, value or timestamp
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def _no_constant(name: str) -> object:
    raise AlertPayloadError("(body)", f"{name} is not a JSON number")


def decode_body(data: bytes) -> object:
    """The request body as JSON, or ``AlertPayloadError`` saying why it cannot be one.

    Beyond what the JSON grammar refuses, a body is refused for what would
    otherwise fail later with a 5xx: nesting deeper than ``MAX_DEPTH`` (the
    decoder would run out of stack), integers beyond 64 bits, ``NaN`` and
    ``Infinity``, and lone surrogates (text that is not Unicode and cannot be
    stored or hashed). NUL characters are removed: no database keeps them.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AlertPayloadError("(body)", f"not UTF-8 at byte {exc.start}") from None
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise AlertPayloadError("(body)", f"nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise AlertPayloadError("(body)", f"not JSON: {exc.msg} at {exc.pos}") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise AlertPayloadError("(body)", f"not usable JSON: {exc}") from None
    return _checked(raw, "(body)", 0)


def _checked(node: object, path: str, depth: int) -> object:
    if depth > MAX_DEPTH:
        raise AlertPayloadError(path, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, str):
        return _text(node, path)
    if isinstance(node, bool) or node is None or isinstance(node, float):
        return node
    if isinstance(node, int):
        if not -MAX_INT < node < MAX_INT:
            raise AlertPayloadError(path, f"integer too large ({len(str(abs(node)))} digits)")
        return node
    if isinstance(node, list):
        return [_checked(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node)]
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            name = _text(key, f"{path}.(key)")
            out[name] = _checked(value, f"{path}.{name}" if path != "(body)" else name, depth + 1)
        return out
    return node


def _text(value: str, path: str) -> str:
    for i, char in enumerate(value):
        if "\ud800" <= char <= "\udfff":
            raise AlertPayloadError(
                path, f"not valid Unicode: lone surrogate U+{ord(char):04X} at {i}"
            )
    return value.replace("\x00", "")


# --- senders -----------------------------------------------------------------


def parse_alertmanager(body: object, *, received_at: datetime | None = None) -> list[Alert]:
    """Parse an Alertmanager webhook (payload version 4)."""
    top = _object(body, "(body)")
    received = _received(received_at)
    version = top.get("version")
    if version is not None and str(version) != "4":
        raise AlertPayloadError("version", f"unsupported webhook version {version!r}, expected '4'")
    external = _optional_str(top, "externalURL", "externalURL")
    alerts = []
    for i, raw in enumerate(_list(top, "alerts", "alerts")):
        path = f"alerts[{i}]"
        item = _object(raw, path)
        alert = _prometheus_style("alertmanager", top, item, path, received)
        links = _links(item, alert.annotations, _ALERTMANAGER_LINKS, path)
        if external:
            links["alertmanager"] = external
        value = _annotation_value(alert.annotations, f"{path}.annotations.value")
        alerts.append(replace(alert, links=links, value=value))
    return alerts


def parse_grafana(body: object, *, received_at: datetime | None = None) -> list[Alert]:
    """Parse a Grafana unified-alerting webhook."""
    top = _object(body, "(body)")
    received = _received(received_at)
    alerts = []
    for i, raw in enumerate(_list(top, "alerts", "alerts")):
        path = f"alerts[{i}]"
        item = _object(raw, path)
        alert = _prometheus_style("grafana", top, item, path, received)
        links = _links(item, alert.annotations, _GRAFANA_LINKS, path)
        values = _values(item.get("values"), f"{path}.values")
        alerts.append(replace(alert, links=links, values=values))
    return alerts


def _prometheus_style(
    source: AlertSource,
    top: Mapping[str, Any],
    item: Mapping[str, Any],
    path: str,
    received: datetime,
) -> Alert:
    """The fields Alertmanager and Grafana alerts share; callers add links and values."""
    labels = _labels(item.get("labels"), f"{path}.labels")
    annotations = _labels(item.get("annotations", {}), f"{path}.annotations")
    starts_at, inferred = _start(item.get("startsAt"), f"{path}.startsAt", received)
    return Alert(
        source=source,
        fingerprint=_fingerprint(item, labels, path),
        name=_alertname(labels, path),
        status=_status(item.get("status", top.get("status")), f"{path}.status"),
        severity=_severity(labels.get("severity")),
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        start_inferred=inferred,
        ends_at=_timestamp(item.get("endsAt"), f"{path}.endsAt"),
        service_hint=labels.get("service") or None,
    )


def parse_generic(body: object, *, received_at: datetime | None = None) -> list[Alert]:
    """Parse ``{"service", "name", "severity", "status", "labels", "annotations", "value"}``.

    ``service`` and ``name`` are required. They become the ``service`` and
    ``alertname`` labels (so catalog matchers see them like any other alert);
    a ``labels`` entry that contradicts them is an error rather than a guess.
    Returns a list so that every parser has the same shape.
    """
    top = _object(body, "(body)")
    received = _received(received_at)
    service = _required_str(top, "service")
    name = _required_str(top, "name")
    severity = _severity(_optional_str(top, "severity", "severity"))
    labels = _labels(top.get("labels", {}), "labels")
    for key, wanted in (("service", service), ("alertname", name)):
        if labels.setdefault(key, wanted) != wanted:
            raise AlertPayloadError(f"labels.{key}", f"{labels[key]!r} contradicts {wanted!r}")
    labels.setdefault("severity", severity)
    annotations = _labels(top.get("annotations", {}), "annotations")
    value = _number(top.get("value"), "value")
    starts_at, inferred = _start(top.get("startsAt"), "startsAt", received)
    fingerprint = _optional_str(top, "fingerprint", "fingerprint") or label_fingerprint(labels)
    return [
        Alert(
            source="generic",
            fingerprint=fingerprint,
            name=name,
            status=_status(top.get("status", "firing"), "status"),
            severity=severity,
            labels=labels,
            annotations=annotations,
            starts_at=starts_at,
            start_inferred=inferred,
            ends_at=_timestamp(top.get("endsAt"), "endsAt"),
            value=value,
            values={"value": value} if value is not None else {},
            links=_links(top, annotations, {}, ""),
            service_hint=service,
        )
    ]


# --- field readers -------------------------------------------------------------


def _object(raw: object, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise AlertPayloadError(path, f"expected an object, got {_kind(raw)}")
    return raw


def _list(top: Mapping[str, Any], key: str, path: str) -> list[Any]:
    raw = top.get(key)
    if raw is None:
        raise AlertPayloadError(path, "required")
    if not isinstance(raw, list):
        raise AlertPayloadError(path, f"expected a list, got {_kind(raw)}")
    return raw


def _required_str(top: Mapping[str, Any], key: str) -> str:
    value = _optional_str(top, key, key)
    if not value:
        raise AlertPayloadError(key, "required (a non-empty string)")
    return value


def _optional_str(top: Mapping[str, Any], key: str, path: str) -> str | None:
    raw = top.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise AlertPayloadError(path, f"expected a string, got {_kind(raw)}")
    return raw.strip() or None


def _labels(raw: object, path: str) -> dict[str, str]:
    """Labels and annotations: string values; numbers and booleans become their text."""
    if raw is None:
        raise AlertPayloadError(path, "required")
    obj = _object(raw, path)
    out: dict[str, str] = {}
    for key, value in obj.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif _plain_number(value):
            out[key] = str(value)
        else:
            raise AlertPayloadError(f"{path}.{key}", f"expected a string, got {_kind(value)}")
    return out


def _plain_number(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and -MAX_INT < value < MAX_INT


def _alertname(labels: Mapping[str, str], path: str) -> str:
    name = labels.get("alertname", "").strip()
    if not name:
        raise AlertPayloadError(f"{path}.labels.alertname", "required")
    return name


def _status(raw: object, path: str) -> AlertStatus:
    if not isinstance(raw, str):
        raise AlertPayloadError(path, f"expected 'firing' or 'resolved', got {_kind(raw)}")
    status = raw.strip().lower()
    if status == "firing":
        return "firing"
    if status == "resolved":
        return "resolved"
    raise AlertPayloadError(path, f"expected 'firing' or 'resolved', got {raw!r}")


def _severity(raw: str | None) -> str:
    return raw.strip().lower() if raw and raw.strip() else DEFAULT_SEVERITY


def _fingerprint(item: Mapping[str, Any], labels: Mapping[str, str], path: str) -> str:
    given = _optional_str(item, "fingerprint", f"{path}.fingerprint")
    return given or label_fingerprint(labels)


def _number(raw: object, path: str) -> float | None:
    """A number, or a numeric string (Prometheus writes sample values as text)."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise AlertPayloadError(path, "expected a number, got a boolean")
    if isinstance(raw, int | float):
        try:
            return float(raw)
        except OverflowError:
            raise AlertPayloadError(path, "number too large") from None
    if isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            raise AlertPayloadError(path, f"expected a number, got {raw[:100]!r}") from None
    raise AlertPayloadError(path, f"expected a number, got {_kind(raw)}")


def _values(raw: object, path: str) -> dict[str, float]:
    """Grafana refId -> number; a null entry (no data for that query) is left out."""
    if raw is None:
        return {}
    out: dict[str, float] = {}
    for ref, value in _object(raw, path).items():
        number = _number(value, f"{path}.{ref}")
        if number is not None:
            out[ref] = number
    return out


def _annotation_value(annotations: Mapping[str, str], path: str) -> float | None:
    """Prometheus rules often put ``{{ $value }}`` in a ``value`` annotation.

    Rendered templates vary (units, humanized numbers), so text that is not a
    plain number is ignored here rather than rejecting the whole alert.
    """
    raw = annotations.get("value")
    if raw is None:
        return None
    try:
        return _number(raw, path)
    except AlertPayloadError:
        return None


def _links(
    item: Mapping[str, Any], annotations: Mapping[str, str], fields: Mapping[str, str], path: str
) -> dict[str, str]:
    links: dict[str, str] = {}
    runbook = next((annotations[k] for k in _RUNBOOK_KEYS if annotations.get(k)), None)
    if runbook:
        links["runbook"] = runbook.strip()
    for key, name in fields.items():
        url = _optional_str(item, key, f"{path}.{key}" if path else key)
        if url:
            links[name] = url
    return links


def _timestamp(raw: object, path: str) -> datetime | None:
    """RFC 3339 (any fraction length, ``Z`` or offset) or Unix seconds; None when unset."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise AlertPayloadError(path, "expected a timestamp, got a boolean")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise AlertPayloadError(path, f"expected a timestamp, got {raw!r}")
        try:
            return _in_range(datetime.fromtimestamp(raw, UTC), raw, path)
        except (OverflowError, OSError, ValueError):
            raise AlertPayloadError(path, f"timestamp out of range: {raw!r}") from None
    if not isinstance(raw, str):
        raise AlertPayloadError(path, f"expected a timestamp, got {_kind(raw)}")
    match = _TIMESTAMP.match(raw.strip())
    if match is None:
        raise AlertPayloadError(path, f"expected an RFC 3339 timestamp, got {raw!r}")
    if match["tz"] is None:
        raise AlertPayloadError(path, f"timestamp has no timezone: {raw!r}")
    if match["date"].startswith("0001-"):
        return None  # Go's zero time: the sender means "not set"
    # Python keeps microseconds; Go senders write nanoseconds.
    frac = (match["frac"] or "")[:6].ljust(6, "0")
    tz = "+00:00" if match["tz"] in ("Z", "z") else match["tz"]
    if len(tz) == 5:
        tz = f"{tz[:3]}:{tz[3:]}"
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}.{frac}{tz}")
        return _in_range(parsed.astimezone(UTC), raw, path)
    except (ValueError, OverflowError) as exc:
        raise AlertPayloadError(path, f"invalid timestamp {raw!r} ({exc})") from None


def _in_range(moment: datetime, raw: object, path: str) -> datetime:
    if not _EARLIEST <= moment < _LATEST:
        raise AlertPayloadError(path, f"timestamp out of range (1970 to 8999): {raw!r}")
    return moment


def _start(raw: object, path: str, received: datetime) -> tuple[datetime, bool]:
    """The sender's start time, else the receipt time; and whether it was the latter."""
    given = _timestamp(raw, path)
    return (given, False) if given is not None else (received, True)


def _received(received_at: datetime | None) -> datetime:
    if received_at is None:
        return datetime.now(UTC)
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    return received_at.astimezone(UTC)


def _json_number(value: float | None) -> float | str | None:
    # NaN and infinities are not JSON; keep them distinguishable as text.
    if value is None or math.isfinite(value):
        return value
    return repr(value)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


__all__ = [
    "DEFAULT_SEVERITY",
    "Alert",
    "AlertPayloadError",
    "AlertSource",
    "AlertStatus",
    "decode_body",
    "label_fingerprint",
    "parse_alertmanager",
    "parse_generic",
    "parse_grafana",
]
