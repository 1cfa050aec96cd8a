"""The health gate against real witnesses: the Kubernetes emulator for readiness, the
real Alertmanager binary for firing alerts, and a loopback server speaking
Prometheus's query API. Every unreachable witness must fail the gate, not raise."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from rollback_bot.catalog import Service
from rollback_bot.executors.health import GateResult, HealthGate
from rollback_bot.kube.client import KubeApis
from sandbox.httpd import QuietThreadingHTTPServer
from sandbox.kube import KubeEmulator
from tests.executors.conftest import create
from tests.support.alertmanager import (
    AlertmanagerProcess,
    WebhookReceiver,
    find_binary,
)

# Not yet on the real control plane: kept on the emulator until converted.
pytestmark = pytest.mark.emulator_only

NS = "shop"


class FakePrometheus:
    """Answers ``/api/v1/query`` with ``answer`` (status 200) and records the queries."""

    def __init__(self) -> None:
        self.answer: Any = _vector(0.0)
        self.status = 200
        self.queries: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path != "/api/v1/query":
                    self.send_error(404)
                    return
                fake.queries.extend(parse_qs(url.query).get("query", []))
                body = json.dumps(fake.answer).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = QuietThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _vector(*values: float) -> dict[str, Any]:
    result = [
        {"metric": {"service": "checkout", "pod": f"p{i}"}, "value": [1700000000.0, str(v)]}
        for i, v in enumerate(values)
    ]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def alertmanager() -> Iterator[AlertmanagerProcess]:
    if find_binary() is None:
        pytest.skip("Alertmanager binary not installed (apt install prometheus-alertmanager)")
    with WebhookReceiver() as receiver, AlertmanagerProcess(webhook_url=receiver.url) as process:
        yield process


@pytest.fixture
def apis(emu: KubeEmulator) -> Iterator[KubeApis]:
    client = emu.api_client()
    bundle = KubeApis(client)
    create(bundle, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    labels = {"app": "checkout"}
    create(
        bundle,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "checkout"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": "shop/checkout:v1"}]},
                },
            },
        },
    )
    emu.wait_for(lambda: _available(emu) == 2, timeout=20)
    yield bundle
    client.close()


def _available(emu: KubeEmulator) -> int:
    obj = emu.get("deployments", NS, "checkout") or {}
    return int((obj.get("status") or {}).get("availableReplicas") or 0)


def _service(name: str = "checkout", **health: Any) -> Service:
    return Service.model_validate(
        {
            "name": name,
            "namespace": NS,
            "deployment": "checkout",
            "channel": "C0ALERTS",
            "match": {"service": name},
            "health": health,
        }
    )


def _gate(apis: KubeApis) -> HealthGate:
    return HealthGate(apis=apis, timeout=5.0)


def _check(name: str, op: str, threshold: float, url: str) -> dict[str, Any]:
    return {"url": url, "query": f"{name}", "op": op, "threshold": threshold}


def test_a_healthy_service_passes(apis: KubeApis, prometheus: FakePrometheus) -> None:
    service = _service(prometheus=_check("error_ratio", "gt", 0.05, prometheus.url))

    result = _gate(apis).check(service)

    assert result.ok, result.reasons
    assert result.reasons == ()
    assert result.checks["readiness"]["available"] == 2
    assert result.checks["alertmanager"]["skipped"]
    assert prometheus.queries == ["error_ratio"]


def test_a_stable_deployment_without_available_replicas_fails(
    emu: KubeEmulator, apis: KubeApis
) -> None:
    apis.apps.patch_namespaced_deployment_scale("checkout", NS, {"spec": {"replicas": 0}})

    result = _gate(apis).check(_service())

    assert not result.ok
    assert result.reasons == ("deployment shop/checkout is scaled to 0 replicas",)


def test_a_rollout_still_coming_up_is_settling_and_scaled_to_zero_is_not(
    emu: KubeEmulator, apis: KubeApis
) -> None:
    """A gradual step's gate waits out "not yet" (``settling``), never a real failure."""
    emu.crash_image("shop/checkout:v2")  # its pods never become Ready: the rollout stays open
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "app", "image": "shop/checkout:v2"}]}}
        }
    }
    apis.apps.patch_namespaced_deployment("checkout", NS, patch)
    emu.wait_for(
        lambda: bool(
            (emu.get("deployments", NS, "checkout") or {}).get("status", {}).get("updatedReplicas")
        ),
        timeout=20,
    )

    rolling = _gate(apis).check(_service())
    assert not rolling.ok and rolling.settling, rolling.reasons
    assert rolling.reasons == ("deployment shop/checkout is still rolling out",)

    apis.apps.patch_namespaced_deployment_scale("checkout", NS, {"spec": {"replicas": 0}})
    assert not _gate(apis).check(_service()).settling


def test_a_missing_deployment_fails_the_gate(apis: KubeApis) -> None:
    service = _service().model_copy(update={"deployment": "gone"})

    result = _gate(apis).check(service)

    assert result.reasons == ("deployment shop/gone not found",)


@pytest.mark.parametrize(
    ("op", "threshold", "values", "ok"),
    [
        ("gt", 0.05, (0.2,), False),
        ("gt", 0.05, (0.01, 0.05), True),
        ("gte", 0.05, (0.01, 0.05), False),
        ("lt", 0.99, (0.995, 0.9), False),
        ("lte", 0.9, (0.95,), True),
        ("eq", 0, (0,), False),
        ("eq", 0.3, (0.1 + 0.2,), False),  # the catalog's one `eq`: within 1e-9, as in triggers
        ("gt", 0.05, (), True),  # no samples: the bad condition is not met
        ("gt", 0.05, (float("nan"),), True),
    ],
)
def test_prometheus_threshold_describes_the_bad_condition(
    apis: KubeApis,
    prometheus: FakePrometheus,
    op: str,
    threshold: float,
    values: tuple[float, ...],
    ok: bool,
) -> None:
    prometheus.answer = _vector(*values)

    result = _gate(apis).check(_service(prometheus=_check("q", op, threshold, prometheus.url)))

    assert result.ok is ok, result.reasons
    assert result.checks["prometheus"]["ok"] is ok


def test_prometheus_reason_names_the_value_and_the_threshold(
    apis: KubeApis, prometheus: FakePrometheus
) -> None:
    prometheus.answer = {
        "status": "success",
        "data": {"resultType": "scalar", "result": [1, "0.2"]},
    }
    query = 'sum(rate(http_errors{service="checkout"}[5m]))'

    result = _gate(apis).check(_service(prometheus=_check(query, "gt", 0.05, prometheus.url)))

    assert result.reasons == (f"Prometheus: {query} = 0.2, which is > 0.05",)
    assert prometheus.queries == [query]


@pytest.mark.parametrize(
    ("status", "answer", "reason"),
    [
        (
            400,
            {"status": "error", "errorType": "bad_data", "error": "parse error"},
            "Prometheus answered HTTP 400",
        ),
        (
            200,
            {"status": "error", "errorType": "timeout", "error": "query timed out"},
            "Prometheus query failed: timeout: query timed out",
        ),
        (
            200,
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
            "query returned a matrix; a vector or a scalar is needed",
        ),
    ],
)
def test_a_failing_prometheus_fails_the_gate(
    apis: KubeApis, prometheus: FakePrometheus, status: int, answer: Any, reason: str
) -> None:
    prometheus.status, prometheus.answer = status, answer

    result = _gate(apis).check(_service(prometheus=_check("q", "gt", 1, prometheus.url)))

    assert not result.ok
    assert len(result.reasons) == 1 and reason in result.reasons[0]


def test_unreachable_witnesses_fail_closed(apis: KubeApis) -> None:
    down = _closed_port_url()
    service = _service(alertmanager_url=down, prometheus=_check("q", "gt", 1, down))

    result = _gate(apis).check(service)

    assert not result.ok
    assert [r.split(" at ")[0] for r in result.reasons] == [
        "Alertmanager unreachable",
        "Prometheus unreachable",
    ]


def test_an_unreachable_kubernetes_api_fails_closed() -> None:
    from kubernetes import client as k8s

    configuration = k8s.Configuration(host=_closed_port_url())
    configuration.retries = 0
    with k8s.ApiClient(configuration) as api_client:
        result = HealthGate(apis=KubeApis(api_client)).check(_service())

    assert not result.ok
    assert "Kubernetes API unreachable" in result.reasons[0]


def _post(am: AlertmanagerProcess, service: str, alertname: str) -> None:
    now = datetime.now(UTC)
    am.post_alerts(
        [
            {
                "labels": {"alertname": alertname, "service": service, "severity": "critical"},
                "annotations": {"summary": "errors"},
                "startsAt": (now - timedelta(minutes=1)).isoformat(),
                "endsAt": (now + timedelta(hours=1)).isoformat(),
            }
        ]
    )


def _poll(gate: HealthGate, service: Service, *, ok: bool, timeout: float = 30.0) -> GateResult:
    """The gate's answer once it says ``ok`` (Alertmanager ingests asynchronously)."""
    deadline = time.monotonic() + timeout
    result = gate.check(service)
    while result.ok is not ok and time.monotonic() < deadline:
        time.sleep(0.1)
        result = gate.check(service)
    return result


def test_firing_alerts_for_the_service_fail_the_gate(
    apis: KubeApis, alertmanager: AlertmanagerProcess
) -> None:
    _post(alertmanager, "payments", "HighErrorRate")
    _post(alertmanager, "payments", "HighLatency")
    _post(alertmanager, "search", "HighErrorRate")
    gate = _gate(apis)
    service = _service("payments", alertmanager_url=alertmanager.url)

    result = _poll(gate, service, ok=False)

    assert not result.ok
    assert result.reasons == ("2 alert(s) firing for payments: HighErrorRate, HighLatency",)
    # A service with no alerts of its own is not held back by its neighbours'.
    calm = HealthGate(apis=apis, alertmanager_url=alertmanager.url).check(_service("orders"))
    assert calm.ok, calm.reasons
    assert calm.checks["alertmanager"]["firing"] == []


def test_silenced_alerts_do_not_hold_the_gate(
    apis: KubeApis, alertmanager: AlertmanagerProcess
) -> None:
    _post(alertmanager, "inventory", "DiskFull")
    gate = _gate(apis)
    service = _service("inventory", alertmanager_url=alertmanager.url)
    assert not _poll(gate, service, ok=False).ok
    now = datetime.now(UTC)
    response = requests.post(
        f"{alertmanager.url}/api/v2/silences",
        json={
            "matchers": [{"name": "service", "value": "inventory", "isRegex": False}],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
            "createdBy": "test",
            "comment": "known issue",
        },
        timeout=10,
    )
    response.raise_for_status()

    result = _poll(gate, service, ok=True)

    assert result.ok, result.reasons
    assert any(
        a["labels"].get("service") == "inventory" and a["status"]["state"] == "suppressed"
        for a in alertmanager.alerts()
    )
