"""HTTP endpoints: Slack events, alert webhooks, health and metrics.

Alert endpoints answer 4xx with the reason for a payload they cannot use and
never 5xx for one: Alertmanager retries 5xx, and a broken payload would be
retried forever. A bearer token is required when ALERT_WEBHOOK_TOKEN is set.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request
from kubernetes import client as k8s
from slack_bolt import App
from slack_bolt.adapter.flask.handler import to_flask_response
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from rollback_bot.alerts.model import Alert, AlertPayloadError
from rollback_bot.alerts.payloads import parse_alertmanager, parse_generic, parse_grafana
from rollback_bot.alerts.payloads.body import decode_body
from rollback_bot.kube.client import KubeApis
from rollback_bot.metrics import CONTENT_TYPE_LATEST
from rollback_bot.services import Services
from rollback_bot.web.acks_first import EXTENSION
from rollback_bot.web.readiness import Readiness
from rollback_bot.web.slack_app import ClaimingLazyRunner
from rollback_bot.web.slack_request import bolt_request

log = logging.getLogger(__name__)

PARSERS: dict[str, Callable[..., list[Alert]]] = {
    "alertmanager": parse_alertmanager,
    "grafana": parse_grafana,
    "generic": parse_generic,
}
MAX_BODY = 5 * 1024 * 1024
PROBE_TIMEOUT = 3  # seconds; a probe must answer before the orchestrator's own timeout


def _error(status: int, message: str) -> tuple[Response, int]:
    # A reason quotes the sender's input; a 100 KB field must not come back whole.
    reason = message if len(message) <= 1000 else message[:999] + "…"
    return jsonify({"ok": False, "error": reason}), status


def create_web_app(services: Services, bolt: App) -> Flask:
    web = Flask("rollback-bot")
    web.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    runner = bolt.listener_runner.lazy_listener_runner
    if isinstance(runner, ClaimingLazyRunner):  # its work waits while Slack requests are served
        web.wsgi_app = runner.acks.counting(web.wsgi_app, "/slack/events")  # type: ignore[method-assign,assignment]
        web.extensions[EXTENSION] = runner.acks
    token = services.settings.alert_webhook_token.get_secret_value()
    metrics_token = services.settings.metrics_token.get_secret_value()
    if not token:
        log.warning(
            "ALERT_WEBHOOK_TOKEN is not set: /alerts/* accept alerts from anyone who can reach "
            "this port. They are shown in Slack, but can neither start nor cancel an automatic "
            "rollback. Set ALERT_WEBHOOK_TOKEN to let trigger rules act."
        )

    @web.post("/slack/events")
    def slack_events() -> Any:
        # Slack sends whole Unix seconds; anything else cannot be checked (slack_sdk would
        # raise on it), so it is refused as an unverifiable request, like a bad signature.
        stamp = request.headers.get("X-Slack-Request-Timestamp")
        if stamp is not None and not (stamp.isascii() and stamp.isdigit() and len(stamp) < 16):
            return _error(401, "invalid X-Slack-Request-Timestamp")
        return to_flask_response(bolt.dispatch(bolt_request(request)))

    @web.post("/alerts/<source>")
    def alerts(source: str) -> Any:
        parser = PARSERS.get(source)
        if parser is None:
            return _error(404, f"unknown alert source {source!r}: use {', '.join(PARSERS)}")
        if token and not hmac.compare_digest(
            request.headers.get("Authorization", ""), f"Bearer {token}"
        ):
            services.metrics.alerts_rejected.labels(source=source, reason="unauthorized").inc()
            return _error(401, "missing or wrong bearer token")
        try:
            body = decode_body(request.get_data(cache=False))
        except AlertPayloadError as exc:
            services.metrics.alerts_rejected.labels(source=source, reason="not_json").inc()
            return _error(400, f"the body is not usable JSON: {exc}")
        try:
            parsed = parser(body, received_at=services.clock.now())
        except AlertPayloadError as exc:
            services.metrics.alerts_rejected.labels(source=source, reason="invalid").inc()
            return _error(422, str(exc))
        unknown = _unknown_named_service(services, parsed) if source == "generic" else None
        if unknown:
            services.metrics.alerts_rejected.labels(source=source, reason="unknown_service").inc()
            return _error(422, unknown)
        with services.metrics.ingest_seconds.time():
            summary = services.relay.ingest(parsed, may_act=bool(token))
        services.metrics.alerts_received.labels(source=source).inc(len(parsed))
        return jsonify({"ok": True, **summary.as_dict()})

    @web.get("/healthz")
    def healthz() -> Any:
        """Liveness: the process serves. What it depends on is /readyz's question."""
        return jsonify({"ok": True})

    readiness = readiness_of(services)

    @web.get("/readyz")
    def readyz() -> Any:
        results = readiness.results()
        ready = all(r.ok for r in results)
        failed = [r.name for r in results if not r.ok]
        body = {
            "ok": ready,
            "checks": {r.name: r.as_dict() for r in results},
            **({"error": f"not ready: {', '.join(failed)} failed"} if failed else {}),
        }
        return jsonify(body), 200 if ready else 503

    @web.get("/metrics")
    def metrics() -> Any:
        if metrics_token and not hmac.compare_digest(
            request.headers.get("Authorization", ""), f"Bearer {metrics_token}"
        ):
            return _error(401, "missing or wrong bearer token (METRICS_TOKEN)")
        return Response(services.metrics.render(), content_type=CONTENT_TYPE_LATEST)

    return web


def readiness_of(services: Services) -> Readiness:
    """The dependencies ``/readyz`` asks: the database, the Kubernetes API, Slack."""
    # Its own client: no retries, short timeout, so a down Slack fails the probe quickly.
    probe = WebClient(
        token=services.slack.token, base_url=services.slack.base_url, timeout=PROBE_TIMEOUT
    )
    version = _version_api(services.kube)

    def database() -> str | None:
        return None if services.database_ok() else "the database does not answer"

    def kubernetes() -> str | None:
        try:
            version().get_code(_request_timeout=PROBE_TIMEOUT)
        except k8s.ApiException as exc:
            return f"the API server answered HTTP {exc.status} {exc.reason}"
        return None

    def slack() -> str | None:
        try:
            probe.auth_test()
        except SlackApiError as exc:
            return f"auth.test: {exc.response.get('error')}"
        return None

    checks = {"database": database, "kubernetes": kubernetes}
    # Every other cluster the catalog names, as ``kubernetes:<context>``: which one is down.
    named = services.clusters.all() if services.clusters is not None else {}
    for name, apis in named.items():
        if apis is not services.kube:
            checks[f"kubernetes:{name}"] = _api_server_probe(apis)
    return Readiness({**checks, "slack": slack})


def _version_api(apis: KubeApis) -> Callable[[], Any]:
    """``VersionApi`` over ``apis``, made at the first probe: its generated module and
    model are imported then, not before ``serve``'s listening line."""

    @functools.cache
    def version() -> Any:
        return k8s.VersionApi(apis.api_client)

    return version


def _api_server_probe(apis: KubeApis) -> Callable[[], str | None]:
    version = _version_api(apis)

    def probe() -> str | None:
        try:
            version().get_code(_request_timeout=PROBE_TIMEOUT)
        except k8s.ApiException as exc:
            return f"the API server answered HTTP {exc.status} {exc.reason}"
        except Exception as exc:  # refused, TLS, timeout: the cluster is down for the bot
            host = apis.api_client.configuration.host
            return f"the API server at {host} does not answer ({type(exc).__name__})"
        return None

    return probe


def _unknown_named_service(services: Services, alerts: list[Alert]) -> str | None:
    """A generic alert names its service: an unknown name is the sender's mistake."""
    for alert in alerts:
        if alert.service_hint and services.relay.service_for(alert) is None:
            known = ", ".join(services.catalog.names)
            return f"unknown service {alert.service_hint!r}: the catalog has {known}"
    return None
