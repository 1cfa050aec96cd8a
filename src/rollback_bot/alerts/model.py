"""The one alert model every sender's payload becomes.

Alertmanager, Grafana and hand-written integrations each describe "something is wrong
with a service" in their own JSON (``alerts.payloads`` reads each one). Everything
downstream (catalog matching, trigger rules, the Slack message, the incident timeline)
works on the single ``Alert`` defined here, so the differences between senders stay in
the payload modules.

``Alert`` is a frozen dataclass rather than a pydantic model: it is built only from
already-validated payloads, is hashed and compared in sets, and must refuse attribute
assignment with ``AttributeError`` like any frozen value.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

AlertSource = Literal["alertmanager", "grafana", "generic", "query"]
AlertStatus = Literal["firing", "resolved"]

DEFAULT_SEVERITY = "warning"


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


def _json_number(value: float | None) -> float | str | None:
    # NaN and infinities are not JSON; keep them distinguishable as text.
    if value is None or math.isfinite(value):
        return value
    return repr(value)
