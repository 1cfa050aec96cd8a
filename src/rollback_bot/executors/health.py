"""The health gate: may a rollback move on, or is the service still hurting?

Between gradual steps, and before a rollback is called mitigated, the bot asks
three independent witnesses and proceeds only when all of them agree:

* Kubernetes: the Deployment that serves traffic is fully rolled out and every
  replica is available (for gradual services the stable Deployment, for
  blue-green services the slot the Service currently selects, otherwise the
  service's Deployment);
* Alertmanager (API v2): no active, unsilenced, uninhibited alert carries the
  service's ``match`` labels;
* Prometheus (optional): an instant query compared with a threshold. The
  threshold describes the *bad* condition, exactly like an alerting rule:
  ``op: gt, threshold: 0.05`` on an error ratio means "fail when the ratio is
  above 5%". The operators are the catalog's (``rollback_bot.catalog.operators``),
  so ``eq`` is the same tolerant equality trigger rules use. An empty result is
  "condition not met" (as for alerting rules), and so is ``NaN``, because every
  comparison with ``NaN`` is false.

The gate fails closed: a witness that cannot be asked (timeout, refused
connection, 5xx, unreadable answer) is a failed check with the reason, never an
exception, because "we could not tell" must stop a rollback as surely as "it is
broken".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from rollback_bot.catalog import PrometheusCheck, Service
from rollback_bot.catalog.operators import compare, symbol
from rollback_bot.integrations.alertmanager import AlertmanagerClient, AlertmanagerError
from rollback_bot.integrations.prometheus import PrometheusClient, PrometheusError
from rollback_bot.kube.argo_rollouts import read_rollout
from rollback_bot.kube.model import ExecutionError
from rollback_bot.kube.workloads import (
    KIND_NAMES,
    desired_and_ready,
    read_workload,
    workload_status,
)


@dataclass(frozen=True)
class GateResult:
    """``ok`` only when every check passed; ``reasons`` says why not, one line each.

    ``checks`` maps each check's name to what was asked and seen: ``source``, ``query``,
    ``value``, ``threshold``, ``result`` (passed, failed or skipped) and ``at``.
    """

    ok: bool
    reasons: tuple[str, ...] = ()
    checks: dict[str, Any] = field(default_factory=dict)
    # Not ok only because the serving Deployment is still rolling out (pods starting, the
    # controller behind): "not yet", which a later look may turn into ok; a failed alert or
    # query, a target scaled to zero or unreadable is not.
    settling: bool = False

    @property
    def alerts_cleared(self) -> bool:
        """The service's alert evidence was asked and is clear (Alertmanager or Prometheus)."""
        asked = [
            c for n, c in self.checks.items() if n != "readiness" and c.get("result") != "skipped"
        ]
        return bool(asked) and all(c.get("ok") for c in asked)

    def checked_text(self) -> str:
        """What was and was not checked, in plain words."""
        done = [
            f"{n} {'passed' if c.get('ok') else 'FAILED'}"
            for n, c in self.checks.items()
            if c.get("result") != "skipped"
        ]
        skipped = [
            f"{n} ({c.get('skipped')})"
            for n, c in self.checks.items()
            if c.get("result") == "skipped"
        ]
        text = "Checked: " + (", ".join(done) or "nothing")
        if "prometheus" not in self.checks:
            skipped.append("prometheus (no health.prometheus query configured)")
        if skipped:
            text += ". Not checked: " + ", ".join(skipped)
        return text


@dataclass(frozen=True)
class _Check:
    name: str
    ok: bool
    reason: str  # empty when ok
    detail: dict[str, Any]
    settling: bool = False  # failed only because a rollout has not finished yet


class HealthGate:
    """Asks Kubernetes, Alertmanager and Prometheus whether ``service`` is healthy.

    ``alertmanager_url`` is the fallback when a service's ``health`` section
    names none (the catalog's top-level ``alertmanager_url``). With neither, the
    alert check is skipped and says so in ``checks``.
    """

    def __init__(
        self,
        *,
        apis: Any,
        timeout: float = 3.0,
        alertmanager_url: str | None = None,
        now: Callable[[], datetime] | None = None,
        alertmanager: AlertmanagerClient | None = None,
        prometheus: PrometheusClient | None = None,
        apis_for: Callable[[Service], Any] | None = None,
    ) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self._apis = apis
        # The client of the service's own cluster (``Clusters.for_service``); default: ``apis``.
        self._apis_for = apis_for or (lambda _service: self._apis)
        self._alertmanager_url = alertmanager_url
        self._alertmanager = alertmanager or AlertmanagerClient(timeout=timeout)
        self._prometheus_client = prometheus or PrometheusClient(timeout=timeout)

    def check(self, service: Service) -> GateResult:
        results = [self._readiness(service), self._alerts(service)]
        if service.health.prometheus is not None:
            results.append(self._prometheus(service.health.prometheus))
        failed = [r for r in results if not r.ok]
        reasons = tuple(r.reason for r in failed)
        at = self._now().isoformat()
        checks = {r.name: _described(r, service, at) for r in results}
        settling = bool(failed) and all(r.settling for r in failed)
        return GateResult(ok=not reasons, reasons=reasons, checks=checks, settling=settling)

    # -- Kubernetes --------------------------------------------------------

    def _readiness(self, service: Service) -> _Check:
        ns = service.namespace
        if service.helm is not None:  # helm rollback --wait waited for the chart's objects
            skipped = "a Helm release: helm rollback --wait checked its objects' readiness"
            return _Check("readiness", True, "", {"skipped": skipped})
        if service.rollout:
            return self._rollout_readiness(ns, service.rollout)
        apis = self._apis_for(service)
        if service.target_kind in KIND_NAMES:
            return _workload_readiness(apis, service)
        try:
            name = self._serving_deployment(service)
        except _NotReadable as exc:
            return _Check("readiness", False, str(exc), {})
        try:
            deployment = apis.apps.read_namespaced_deployment(name, ns)
        except Exception as exc:  # any failure to look is a failed check
            return _Check("readiness", False, _unreadable(f"deployment {ns}/{name}", exc), {})
        return _deployment_readiness(ns, name, deployment)

    def _rollout_readiness(self, ns: str, name: str) -> _Check:
        """An Argo Rollout is ready when its controller reports it Healthy."""
        try:
            rollout = read_rollout(self._apis, ns, name)
        except Exception as exc:  # any failure to look is a failed check
            return _Check("readiness", False, _unreadable(f"rollout {ns}/{name}", exc), {})
        phase = str((rollout.get("status") or {}).get("phase") or "Unknown")
        detail = {"rollout": name, "phase": phase}
        if phase != "Healthy":
            return _Check("readiness", False, f"rollout {ns}/{name} is {phase}", detail)
        return _Check("readiness", True, "", detail)

    def _serving_deployment(self, service: Service) -> str:
        if service.gradual is not None:
            return service.gradual.stable
        bg = service.blue_green
        if bg is None:
            return service.deployment
        try:
            svc = self._apis_for(service).core.read_namespaced_service(
                bg.service, service.namespace
            )
        except Exception as exc:
            what = f"service {service.namespace}/{bg.service}"
            raise _NotReadable(_unreadable(what, exc)) from exc
        live = (svc.spec.selector or {}).get(bg.selector_key)
        if live not in bg.slots:
            raise _NotReadable(
                f"service {service.namespace}/{bg.service} selects {bg.selector_key}={live}, "
                f"which is none of the slots {', '.join(bg.slots)}"
            )
        return bg.slots[live]

    # -- Alertmanager ------------------------------------------------------

    def _alerts(self, service: Service) -> _Check:
        base = service.health.alertmanager_url or self._alertmanager_url
        if not base:
            return _Check("alertmanager", True, "", {"skipped": "no alertmanager_url configured"})
        try:
            alerts = self._alertmanager.firing(base, service.match)
        except AlertmanagerError as exc:
            return _Check("alertmanager", False, str(exc), {"url": base})
        firing = sorted({str((a.get("labels") or {}).get("alertname", "?")) for a in alerts})
        if firing:
            reason = f"{len(firing)} alert(s) firing for {service.name}: {', '.join(firing)}"
            return _Check("alertmanager", False, reason, {"firing": firing, "url": base})
        return _Check("alertmanager", True, "", {"firing": [], "url": base})

    # -- Prometheus --------------------------------------------------------

    def _prometheus(self, check: PrometheusCheck) -> _Check:
        try:
            values = [
                sample.value for sample in self._prometheus_client.instant(check.url, check.query)
            ]
        except PrometheusError as exc:
            return _Check("prometheus", False, str(exc), {"query": check.query})
        op = symbol(check.op)
        bad = [v for v in values if compare(check.op, v, check.threshold)]
        detail = {
            "query": check.query,
            "values": values,
            "bad_when": f"{op} {check.threshold}",
            "url": check.url,
        }
        if bad:
            reason = (
                f"Prometheus: {check.query} = {_fmt(bad[0])}, which is {op} {_fmt(check.threshold)}"
            )
            return _Check("prometheus", False, reason, detail)
        return _Check("prometheus", True, "", detail)


def _described(check: _Check, service: Service, at: str) -> dict[str, Any]:
    """One check as the timeline keeps it: what was asked of whom, what came back."""
    d = check.detail
    result = "skipped" if "skipped" in d else ("passed" if check.ok else "failed")
    if check.name == "readiness" and "rollout" in d:
        source = "kubernetes"
        query = f"rollout {service.namespace}/{d['rollout']}"
        value: Any = f"phase {d.get('phase')}"
        threshold: Any = "phase Healthy (the Argo Rollouts controller's verdict)"
    elif check.name == "readiness":
        source = "kubernetes"
        query = d.get("target") or (
            f"deployment {service.namespace}/{d.get('deployment', service.deployment)}"
        )
        value = f"{d.get('available', '?')}/{d.get('replicas', '?')} available"
        threshold = "all replicas available and updated"
    elif check.name == "alertmanager":
        source = d.get("url") or "alertmanager"
        query = "active alerts matching " + ", ".join(
            f"{k}={v}" for k, v in sorted(service.match.items())
        )
        value = d.get("firing")
        threshold = "no alert firing"
    else:
        source = d.get("url") or "prometheus"
        query = str(d.get("query") or "")
        value = d.get("values")
        threshold = f"fails when {d.get('bad_when', '?')}"
    return {
        "ok": check.ok,
        **d,
        "name": check.name,
        "source": source,
        "query": query,
        "value": value,
        "threshold": threshold,
        "result": result,
        "reason": check.reason,
        "at": at,
    }


class _NotReadable(Exception):
    """The serving Deployment cannot be determined; the message says why."""


def _unreadable(what: str, exc: Exception) -> str:
    if isinstance(exc, ApiException):
        if exc.status == 404:
            return f"{what} not found"
        return f"cannot read {what}: HTTP {exc.status} {exc.reason or ''}".rstrip()
    return f"cannot read {what}: Kubernetes API unreachable ({type(exc).__name__})"


def _deployment_readiness(ns: str, name: str, deployment: Any) -> _Check:
    wanted = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    status = deployment.status
    available = (status.available_replicas or 0) if status else 0
    updated = (status.updated_replicas or 0) if status else 0
    observed = (status.observed_generation or 0) if status else 0
    detail = {"deployment": name, "replicas": wanted, "available": available}
    where = f"deployment {ns}/{name}"
    if wanted == 0:
        return _Check("readiness", False, f"{where} is scaled to 0 replicas", detail)
    if observed < (deployment.metadata.generation or 0) or updated < wanted:
        return _Check("readiness", False, f"{where} is still rolling out", detail, settling=True)
    if available < wanted:
        reason = f"{where} has {available}/{wanted} replicas available"
        return _Check("readiness", False, reason, detail, settling=True)
    return _Check("readiness", True, "", detail)


def _workload_readiness(apis: Any, service: Service) -> _Check:
    """A StatefulSet or DaemonSet: ready when ``kubectl rollout status`` would say so."""
    where = service.target_ref
    try:
        workload = read_workload(apis, service.target_kind, service.namespace, service.target_name)
    except ExecutionError as exc:
        return _Check("readiness", False, f"cannot read {where}: {exc}", {"target": where})
    desired, ready = desired_and_ready(service.target_kind, workload)
    detail = {"target": where, "replicas": desired, "available": ready}
    if desired == 0:
        return _Check("readiness", False, f"{where} has 0 pods desired", detail)
    status = workload_status(service.target_kind, workload)
    if not (status.done and status.ok):
        return _Check("readiness", False, f"{where}: {status.detail}", detail)
    if ready < desired:
        return _Check("readiness", False, f"{where} has {ready}/{desired} pods ready", detail)
    return _Check("readiness", True, "", detail)


def _fmt(value: float) -> str:
    return f"{value:g}"
