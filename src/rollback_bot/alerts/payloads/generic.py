"""The generic alert: ``{"service", "name", "severity", "status", "labels", ...}``."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from rollback_bot.alerts.model import Alert, AlertPayloadError, label_fingerprint
from rollback_bot.alerts.payloads.fields import (
    Labels,
    Number,
    OptionalText,
    Payload,
    RequiredText,
    Status,
    Timestamp,
    received,
    runbook_link,
    severity,
    validate,
)


class GenericAlert(Payload):
    # Defaults are validated too, so a missing service reads like an empty one.
    service: RequiredText = Field(default=None, validate_default=True)
    name: RequiredText = Field(default=None, validate_default=True)
    severity: OptionalText = None
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    value: Number = None
    starts_at: Timestamp = Field(default=None, alias="startsAt")
    fingerprint: OptionalText = None
    status: Status = "firing"
    ends_at: Timestamp = Field(default=None, alias="endsAt")

    def to_alert(self, received_at: datetime) -> Alert:
        """``service`` and ``name`` become labels, so catalog matchers see them as any other.

        A ``labels`` entry that contradicts them is an error rather than a guess.
        """
        level = severity(self.severity)
        labels = dict(self.labels)
        for key, wanted in (("service", self.service), ("alertname", self.name)):
            if labels.setdefault(key, wanted) != wanted:
                raise AlertPayloadError(f"labels.{key}", f"{labels[key]!r} contradicts {wanted!r}")
        labels.setdefault("severity", level)
        return Alert(
            source="generic",
            fingerprint=self.fingerprint or label_fingerprint(labels),
            name=self.name,
            status=self.status,
            severity=level,
            labels=labels,
            annotations=dict(self.annotations),
            starts_at=self.starts_at or received_at,
            start_inferred=self.starts_at is None,
            ends_at=self.ends_at,
            value=self.value,
            values={"value": self.value} if self.value is not None else {},
            links=runbook_link(self.annotations),
            service_hint=self.service,
        )


def parse_generic(body: object, *, received_at: datetime | None = None) -> list[Alert]:
    """Parse one generic alert; a list, so that every parser has the same shape."""
    return [validate(GenericAlert, body).to_alert(received(received_at))]
