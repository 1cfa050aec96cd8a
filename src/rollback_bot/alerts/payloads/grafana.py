"""Grafana unified alerting's webhook as a pydantic model."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import Field

from rollback_bot.alerts.model import Alert
from rollback_bot.alerts.payloads.common import PrometheusStyleAlert
from rollback_bot.alerts.payloads.fields import (
    OptionalText,
    Payload,
    Values,
    received,
    runbook_link,
    validate,
)


class GrafanaAlert(PrometheusStyleAlert):
    values: Values = Field(default_factory=dict)
    dashboard_url: OptionalText = Field(default=None, alias="dashboardURL")
    panel_url: OptionalText = Field(default=None, alias="panelURL")
    silence_url: OptionalText = Field(default=None, alias="silenceURL")

    def links(self, annotations: dict[str, str]) -> dict[str, str]:
        found = {
            "dashboard": self.dashboard_url,
            "panel": self.panel_url,
            "silence": self.silence_url,
            "generator": self.generator_url,
        }
        return runbook_link(annotations) | {name: url for name, url in found.items() if url}


class GrafanaWebhook(Payload):
    # Kept raw: it matters only for an alert without its own status, and is checked there.
    status: Any = None
    alerts: list[GrafanaAlert]

    def to_alerts(self, received_at: datetime) -> list[Alert]:
        alerts = []
        for i, item in enumerate(self.alerts):
            alert = item.to_alert(
                "grafana", group_status=self.status, path=f"alerts[{i}]", received=received_at
            )
            # A refId with no data (null) is no number, not an error.
            values = {ref: v for ref, v in item.values.items() if v is not None}
            alerts.append(replace(alert, links=item.links(alert.annotations), values=values))
        return alerts


def parse_grafana(body: object, *, received_at: datetime | None = None) -> list[Alert]:
    """Parse a Grafana unified-alerting webhook."""
    return validate(GrafanaWebhook, body).to_alerts(received(received_at))
