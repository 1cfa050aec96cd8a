"""The alert item Alertmanager and Grafana share: Prometheus-style labels and times.

Both senders post a group whose ``alerts`` each carry ``labels`` (with ``alertname``),
``annotations``, ``startsAt``/``endsAt``, a ``fingerprint`` and a ``status`` that may be
left to the group's. The sender modules add their own links and values.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from rollback_bot.alerts.model import (
    Alert,
    AlertPayloadError,
    AlertSource,
    AlertStatus,
    label_fingerprint,
)
from rollback_bot.alerts.payloads.fields import (
    Labels,
    OptionalText,
    Payload,
    Status,
    Timestamp,
    checked,
    parse_status,
    severity,
)


class PrometheusStyleAlert(Payload):
    # In the order they were always checked: of several problems, the first is reported.
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    starts_at: Timestamp = Field(default=None, alias="startsAt")
    fingerprint: OptionalText = None
    # None only when absent: an explicit null is refused by ``Status`` like any non-status,
    # so None means "take the group's".
    status: Status | None = None
    ends_at: Timestamp = Field(default=None, alias="endsAt")
    generator_url: OptionalText = Field(default=None, alias="generatorURL")

    def to_alert(
        self, source: AlertSource, *, group_status: object, path: str, received: datetime
    ) -> Alert:
        """The shared fields as an ``Alert``; the caller adds links, value and values."""
        name = self.labels.get("alertname", "").strip()
        if not name:
            raise AlertPayloadError(f"{path}.labels.alertname", "required")
        # An alert without its own status takes the group's, checked at the alert's path.
        status: AlertStatus = self.status or checked(f"{path}.status", parse_status, group_status)
        return Alert(
            source=source,
            fingerprint=self.fingerprint or label_fingerprint(self.labels),
            name=name,
            status=status,
            severity=severity(self.labels.get("severity")),
            labels=dict(self.labels),
            annotations=dict(self.annotations),
            starts_at=self.starts_at or received,
            start_inferred=self.starts_at is None,
            ends_at=self.ends_at,
            service_hint=self.labels.get("service") or None,
        )
