"""The Alertmanager webhook parser against what the real Alertmanager sends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rollback_bot.alerts.payloads import parse_alertmanager
from tests.support import alertmanager as am

alertmanager_factory = am.alertmanager_factory
webhook_receiver = am.webhook_receiver

Factory = Callable[..., am.AlertmanagerProcess]


def _alert(starts_at: datetime, ends_at: datetime | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": {
            "alertname": "HighErrorRate",
            "service": "checkout",
            "severity": "critical",
        },
        "annotations": {"runbook_url": "https://runbooks.example/checkout", "value": "0.12"},
        "startsAt": starts_at.isoformat(),
        "generatorURL": "http://prometheus.example/graph?g0.expr=errors",
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at.isoformat()
    return alert


def test_firing_then_resolved_webhooks_parse(
    alertmanager_factory: Factory, webhook_receiver: am.WebhookReceiver
) -> None:
    token = "s3cret-token"
    manager = alertmanager_factory(
        webhook_url=f"{webhook_receiver.url}/alerts/alertmanager", bearer_token=token
    )
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)

    manager.post_alerts([_alert(started)])
    firing = webhook_receiver.next(timeout=30)

    assert firing.path == "/alerts/alertmanager"
    assert firing.headers.get("Authorization") == f"Bearer {token}"
    assert firing.body["version"] == "4"
    assert firing.body["status"] == "firing"
    assert firing.body["groupLabels"] == {"alertname": "HighErrorRate", "service": "checkout"}
    [alert] = parse_alertmanager(firing.body)
    assert alert.source == "alertmanager"
    assert alert.name == "HighErrorRate"
    assert alert.status == "firing"
    assert alert.severity == "critical"
    assert alert.labels == {
        "alertname": "HighErrorRate",
        "service": "checkout",
        "severity": "critical",
    }
    assert alert.starts_at == started
    assert alert.ends_at is None  # sent as Go's zero time
    assert alert.fingerprint == firing.body["alerts"][0]["fingerprint"]
    assert alert.value == 0.12
    assert alert.links["runbook"] == "https://runbooks.example/checkout"
    assert alert.links["generator"].startswith("http://prometheus.example/graph")
    assert alert.links["alertmanager"] == firing.body["externalURL"]
    assert alert.service_hint == "checkout"
    assert [a["labels"]["alertname"] for a in manager.alerts()] == ["HighErrorRate"]
    assert manager.silences() == []

    manager.post_alerts([_alert(started, ends_at=datetime.now(UTC) - timedelta(seconds=5))])
    resolved = webhook_receiver.wait_for(lambda d: d.body.get("status") == "resolved", timeout=30)

    [gone] = parse_alertmanager(resolved.body)
    assert gone.status == "resolved"
    assert gone.fingerprint == alert.fingerprint
    assert gone.ends_at is not None and gone.ends_at < datetime.now(UTC)
    assert gone.payload_hash() != alert.payload_hash()
