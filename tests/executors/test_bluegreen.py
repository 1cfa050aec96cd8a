"""Blue-green rollback over the Kubernetes emulator: the Service selector moves, the
old slot stays warm, unusable slots are refused, conflicts and 5xx are retried,
and a drill changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rollback_bot.catalog import Service
from rollback_bot.executors.bluegreen import WRITE_ATTEMPTS, BlueGreenExecutor
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.model import Actor, ExecutionError
from sandbox.kube import KubeEmulator
from sandbox.stack import deployment_manifest
from tests.executors.conftest import create
from tests.support.backend import EMULATOR, Backend

ALICE = Actor(slack_user="U0ALICE")
EDIT_SERVICES = {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "patch"]}


class Slots:
    """The cluster these tests arrange: a backend and this test's namespace."""

    def __init__(self, backend: Backend, ns: str) -> None:
        self.backend = backend
        self.ns = ns
        self.wait = 20.0 if backend.name == EMULATOR else 90.0

    def get(self, resource: str, name: str) -> dict[str, Any] | None:
        return self.backend.get(resource, self.ns, name)

    def writes(self) -> list[dict[str, Any]]:
        return self.backend.writes(self.ns)

    @property
    def emu(self) -> KubeEmulator:
        return self.backend.emu  # type: ignore[attr-defined, no-any-return]


def _service(ns: str, slots: dict[str, str] | None = None) -> Service:
    return Service.model_validate(
        {
            "name": "checkout",
            "namespace": ns,
            "deployment": "checkout-blue",
            "channel": "C0ALERTS",
            "match": {"service": "checkout"},
            "strategy": "blue-green",
            "blue_green": {
                "service": "checkout",
                "slots": slots or {"blue": "checkout-blue", "green": "checkout-green"},
            },
        }
    )


def _deployment(name: str, slot: str, replicas: int, image: str) -> dict[str, Any]:
    return deployment_manifest(
        name, image, replicas=replicas, labels={"app": "checkout", "slot": slot}
    )


def _available(c: Slots, name: str) -> int:
    obj = c.get("deployments", name) or {}
    return int((obj.get("status") or {}).get("availableReplicas") or 0)


def _settled(c: Slots, name: str, replicas: int) -> None:
    def done() -> bool:
        obj = c.get("deployments", name) or {}
        status = obj.get("status") or {}
        return (
            status.get("observedGeneration") == obj["metadata"]["generation"]
            and int(status.get("availableReplicas") or 0) == replicas
            and int(status.get("replicas") or 0) == replicas
        )

    c.backend.wait_for(done, timeout=c.wait)


@pytest.fixture
def cluster(kube_backend: Backend, ns: str, apis: KubeApis) -> Slots:
    """blue (live) and green, two ready replicas each, behind Service checkout."""
    c = Slots(kube_backend, ns)
    for slot, image in (("blue", "shop/checkout:v2"), ("green", "shop/checkout:v1")):
        body = _deployment(f"checkout-{slot}", slot, 2, image)
        create(apis, body, ns)
    create(
        apis,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "checkout"},
            "spec": {
                "selector": {"app": "checkout", "slot": "blue"},
                "ports": [{"port": 80, "targetPort": 8080}],
            },
        },
        ns,
    )
    _settled(c, "checkout-blue", 2)
    _settled(c, "checkout-green", 2)
    return c


def _selector(c: Slots) -> dict[str, str]:
    svc = c.get("services", "checkout") or {}
    return dict(svc["spec"]["selector"])


def _crash_green(c: Slots, apis: KubeApis) -> None:
    """Green's pods die and their replacements crash-loop: nothing available (the emulator
    crashes a running image in place; a real cluster cannot)."""
    c.emu.crash_image("shop/checkout:v1")
    apis.core.delete_collection_namespaced_pod(c.ns, label_selector="slot=green")
    c.backend.wait_for(lambda: _available(c, "checkout-green") == 0, timeout=20)


def _scale(c: Slots, apis: KubeApis, name: str, replicas: int) -> None:
    apis.apps.patch_namespaced_deployment_scale(name, c.ns, {"spec": {"replicas": replicas}})


def test_switches_selector_to_the_other_slot_and_keeps_the_old_one_warm(
    cluster: Slots, apis: KubeApis, tmp_path: Path
) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service(cluster.ns)
    plan = executor.plan(service)
    assert plan.detail["from_slot"] == "blue"
    assert plan.detail["target_slot"] == "green"
    assert (plan.from_image, plan.to_image) == ("shop/checkout:v2", "shop/checkout:v1")

    result = executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert result.finished and not result.noop
    assert [c.verb for c in result.changes] == ["switched"]
    assert _selector(cluster) == {"app": "checkout", "slot": "green"}
    blue = cluster.get("deployments", "checkout-blue") or {}
    assert blue["spec"]["replicas"] == 2  # warm for a quick roll forward
    verification = executor.verify(service, plan, drill=False)
    assert verification.ok and verification.done, verification.detail
    # kubectl reads the same selector back.
    shown = cluster.backend.kubectl(
        tmp_path,
        *("-n", cluster.ns, "get", "service", "checkout", "-o", "jsonpath={.spec.selector.slot}"),
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "green"


def test_applying_the_switch_again_changes_nothing(cluster: Slots, apis: KubeApis) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service(cluster.ns)
    plan = executor.plan(service)
    executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)
    writes = len(cluster.writes())

    again = executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert again.noop and again.changes == ()
    assert len(cluster.writes()) == writes
    assert _selector(cluster)["slot"] == "green"


def test_refuses_a_slot_scaled_to_zero(cluster: Slots, apis: KubeApis) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service(cluster.ns)
    plan = executor.plan(service)
    _scale(cluster, apis, "checkout-green", 0)
    _settled(cluster, "checkout-green", 0)

    with pytest.raises(ExecutionError) as refused:
        executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert str(refused.value) == (
        "green slot checkout-green is scaled to zero; refusing to switch traffic to it"
    )
    assert not refused.value.retryable
    assert _selector(cluster)["slot"] == "blue"
    with pytest.raises(ExecutionError, match="scaled to zero"):
        executor.plan(service)


@pytest.mark.emulator_only
def test_refuses_a_slot_with_no_available_replicas(cluster: Slots, apis: KubeApis) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service(cluster.ns)
    plan = executor.plan(service)
    _crash_green(cluster, apis)

    with pytest.raises(ExecutionError) as refused:
        executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert str(refused.value) == (
        "green slot checkout-green has 0 available replicas; refusing to switch traffic to it"
    )
    assert _selector(cluster)["slot"] == "blue"


def test_refuses_when_the_live_slot_is_not_in_the_catalog(cluster: Slots, apis: KubeApis) -> None:
    apis.core.patch_namespaced_service(
        "checkout", cluster.ns, {"spec": {"selector": {"slot": "purple"}}}
    )

    with pytest.raises(ExecutionError) as refused:
        BlueGreenExecutor(apis).plan(_service(cluster.ns))

    assert "selects slot=purple, which is none of the catalog's slots (blue, green)" in str(
        refused.value
    )


def test_a_chosen_target_among_three_slots(cluster: Slots, apis: KubeApis) -> None:
    create(apis, _deployment("checkout-red", "red", 1, "shop/checkout:v0"), cluster.ns)
    _settled(cluster, "checkout-red", 1)
    slots = {"blue": "checkout-blue", "green": "checkout-green", "red": "checkout-red"}
    service = _service(cluster.ns, slots)
    executor = BlueGreenExecutor(apis)
    default = executor.plan(service)
    assert default.detail["target_slot"] == "green"
    assert default.warnings == ("chose slot green; red could also take the traffic",)

    plan = executor.plan(service, target_slot="red")
    executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert _selector(cluster)["slot"] == "red"
    assert executor.verify(service, plan, drill=False).ok


@pytest.mark.emulator_only
def test_a_conflict_mid_switch_is_retried(cluster: Slots, apis: KubeApis) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service(cluster.ns)
    plan = executor.plan(service)
    cluster.emu.inject_faults(
        resource="services", namespace=cluster.ns, name="checkout", conflicts=2
    )

    result = executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert not result.noop
    assert _selector(cluster)["slot"] == "green"


@pytest.mark.emulator_only
def test_conflicts_past_the_budget_are_a_retryable_error(cluster: Slots, apis: KubeApis) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service(cluster.ns)
    plan = executor.plan(service)
    cluster.emu.inject_faults(
        resource="services", namespace=cluster.ns, name="checkout", conflicts=WRITE_ATTEMPTS
    )

    with pytest.raises(ExecutionError) as failed:
        executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert failed.value.retryable
    assert "HTTP 409" in str(failed.value)
    assert _selector(cluster)["slot"] == "blue"
    # The budget is spent on the faults, so the next try goes through.
    executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)
    assert _selector(cluster)["slot"] == "green"


@pytest.mark.emulator_only
def test_server_errors_are_retried_then_reported_as_retryable(
    cluster: Slots, apis: KubeApis
) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service(cluster.ns)
    plan = executor.plan(service)
    cluster.emu.inject_faults(
        resource="services", namespace=cluster.ns, name="checkout", errors=2, status=503
    )
    executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)
    assert _selector(cluster)["slot"] == "green"

    back = executor.plan(service)  # green -> blue
    cluster.emu.inject_faults(resource="services", namespace=cluster.ns, name="checkout", errors=50)
    with pytest.raises(ExecutionError) as failed:
        executor.apply_step(service, back, step=0, actor=ALICE, drill=False)

    assert failed.value.retryable
    assert "HTTP 500" in str(failed.value)
    assert _selector(cluster)["slot"] == "green"


def test_a_drill_changes_nothing(cluster: Slots, apis: KubeApis) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service(cluster.ns)
    plan = executor.plan(service)
    cluster.backend.grant(cluster.ns, "alice", [EDIT_SERVICES])
    before = cluster.backend.fingerprint(cluster.ns)

    result = executor.apply_step(
        service, plan, step=0, actor=Actor("U0ALICE", kube_user="alice"), drill=True
    )

    assert cluster.backend.fingerprint(cluster.ns) == before
    assert [c.dry_run for c in result.changes] == [True]
    writes = [e for e in cluster.writes() if e["verb"] == "patch" and e["resource"] == "services"]
    assert [(e["user"], e["dryRun"]) for e in writes] == [("alice", True)]
    assert executor.verify(service, plan, drill=True).ok


@pytest.mark.emulator_only
def test_verify_is_not_done_while_the_target_is_not_fully_available(
    cluster: Slots, apis: KubeApis
) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service(cluster.ns)
    plan = executor.plan(service)
    executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)
    _crash_green(cluster, apis)

    verification = executor.verify(service, plan, drill=False)

    assert not verification.ok and not verification.done
    assert "0/2 available" in verification.detail
