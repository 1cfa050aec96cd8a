"""Alertmanager's webhook, payload version 4, as a pydantic model."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, PlainValidator

from rollback_bot.alerts.model import Alert
from rollback_bot.alerts.payloads.common import PrometheusStyleAlert
from rollback_bot.alerts.payloads.fields import (
    OptionalText,
    Payload,
    parse_number,
    problem,
    received,
    runbook_link,
    validate,
)


def _version_4(raw: object) -> object:
    if raw is not None and str(raw) != "4":
        raise problem(f"unsupported webhook version {raw!r}, expected '4'")
    return raw


def _annotation_value(annotations: dict[str, str]) -> float | None:
    """Prometheus rules often put ``{{ $value }}`` in a ``value`` annotation.

    Rendered templates vary (units, humanized numbers), so text that is not a plain
    number is ignored here rather than rejecting the whole alert.
    """
    raw = annotations.get("value")
    try:
        return parse_number(raw)
    except ValueError:  # PydanticCustomError is a ValueError
        return None


class AlertmanagerWebhook(Payload):
    version: Annotated[Any, PlainValidator(_version_4)] = None
    # Kept raw: it matters only for an alert without its own status, and is checked there.
    status: Any = None
    external_url: OptionalText = Field(default=None, alias="externalURL")
    alerts: list[PrometheusStyleAlert]

    def to_alerts(self, received_at: datetime) -> list[Alert]:
        alerts = []
        for i, item in enumerate(self.alerts):
            alert = item.to_alert(
                "alertmanager", group_status=self.status, path=f"alerts[{i}]", received=received_at
            )
            links = runbook_link(alert.annotations)
            if item.generator_url:
                links["generator"] = item.generator_url
            if self.external_url:
                links["alertmanager"] = self.external_url
            alerts.append(replace(alert, links=links, value=_annotation_value(alert.annotations)))
        return alerts


def parse_alertmanager(body: object, *, received_at: datetime | None = None) -> list[Alert]:
    """Parse an Alertmanager webhook (payload version 4)."""
    return validate(AlertmanagerWebhook, body).to_alerts(received(received_at))
