"""Prometheus metrics for ``GET /metrics``.

A registry per process (not the library's global one) so that tests can build
several bots side by side without their counters colliding.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.alerts_received = Counter(
            "rollback_bot_alerts_received",
            "Alerts received over the webhooks",
            ["source"],
            registry=self.registry,
        )
        self.alerts_rejected = Counter(
            "rollback_bot_alert_payloads_rejected",
            "Webhook payloads refused as malformed or unauthorized",
            ["source", "reason"],
            registry=self.registry,
        )
        self.slack_requests = Counter(
            "rollback_bot_slack_requests",
            "Signed requests from Slack handled",
            ["kind"],
            registry=self.registry,
        )
        self.slack_errors = Counter(
            "rollback_bot_slack_write_errors",
            "Messages Slack refused or never received",
            registry=self.registry,
        )
        self.rollbacks = Counter(
            "rollback_bot_rollback_transitions",
            "Rollback state changes",
            ["state"],
            registry=self.registry,
        )
        self.ingest_seconds = Histogram(
            "rollback_bot_alert_ingest_seconds",
            "Time to store one webhook delivery",
            registry=self.registry,
        )

        self.leader = Gauge(
            "rollback_bot_leader",
            "1 while this replica holds the lease and runs scheduled work, else 0",
            registry=self.registry,
        )
        self.scheduler_lag = Histogram(
            "rollback_bot_scheduler_lag_seconds",
            "How long after its time a scheduled job started on the leader",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
