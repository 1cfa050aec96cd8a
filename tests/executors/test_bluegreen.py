"""Blue-green rollback over the Kubernetes emulator: the Service selector moves, the
old slot stays warm, unusable slots are refused, conflicts and 5xx are retried,
and a drill changes nothing."""

from __future__ import annotations

import subprocess
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

# Not yet on the real control plane: kept on the emulator until converted.
pytestmark = pytest.mark.emulator_only

NS = "shop"
ALICE = Actor(slack_user="U0ALICE")


def _service(slots: dict[str, str] | None = None) -> Service:
    return Service.model_validate(
        {
            "name": "checkout",
            "namespace": NS,
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


def _available(emu: KubeEmulator, name: str) -> int:
    obj = emu.get("deployments", NS, name) or {}
    return int((obj.get("status") or {}).get("availableReplicas") or 0)


def _settled(emu: KubeEmulator, name: str, replicas: int) -> None:
    def done() -> bool:
        obj = emu.get("deployments", NS, name) or {}
        status = obj.get("status") or {}
        return (
            status.get("observedGeneration") == obj["metadata"]["generation"]
            and int(status.get("availableReplicas") or 0) == replicas
            and int(status.get("replicas") or 0) == replicas
        )

    emu.wait_for(done, timeout=20)


@pytest.fixture
def cluster(emu: KubeEmulator, apis: KubeApis) -> KubeEmulator:
    """blue (live) and green, two ready replicas each, behind Service checkout."""
    create(apis, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    for slot, image in (("blue", "shop/checkout:v2"), ("green", "shop/checkout:v1")):
        body = _deployment(f"checkout-{slot}", slot, 2, image)
        create(apis, body)
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
    )
    _settled(emu, "checkout-blue", 2)
    _settled(emu, "checkout-green", 2)
    return emu


def _selector(emu: KubeEmulator) -> dict[str, str]:
    svc = emu.get("services", NS, "checkout") or {}
    return dict(svc["spec"]["selector"])


def _crash_green(emu: KubeEmulator, apis: KubeApis) -> None:
    """Green's pods die and their replacements crash-loop: nothing available."""
    emu.crash_image("shop/checkout:v1")
    apis.core.delete_collection_namespaced_pod(NS, label_selector="slot=green")
    emu.wait_for(lambda: _available(emu, "checkout-green") == 0, timeout=20)


def _scale(apis: KubeApis, name: str, replicas: int) -> None:
    apis.apps.patch_namespaced_deployment_scale(name, NS, {"spec": {"replicas": replicas}})


def test_switches_selector_to_the_other_slot_and_keeps_the_old_one_warm(
    cluster: KubeEmulator, apis: KubeApis, tmp_path: Path
) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service()
    plan = executor.plan(service)
    assert plan.detail["from_slot"] == "blue"
    assert plan.detail["target_slot"] == "green"
    assert (plan.from_image, plan.to_image) == ("shop/checkout:v2", "shop/checkout:v1")

    result = executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert result.finished and not result.noop
    assert [c.verb for c in result.changes] == ["switched"]
    assert _selector(cluster) == {"app": "checkout", "slot": "green"}
    blue = cluster.get("deployments", NS, "checkout-blue") or {}
    assert blue["spec"]["replicas"] == 2  # warm for a quick roll forward
    verification = executor.verify(service, plan, drill=False)
    assert verification.ok and verification.done, verification.detail
    # kubectl reads the same selector back.
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kc")
    shown = subprocess.run(
        [
            *("kubectl", "--kubeconfig", kubeconfig, "--cache-dir", str(tmp_path / "cache")),
            *("-n", NS, "get", "service", "checkout", "-o", "jsonpath={.spec.selector.slot}"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert shown.stdout == "green"


def test_applying_the_switch_again_changes_nothing(cluster: KubeEmulator, apis: KubeApis) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service()
    plan = executor.plan(service)
    executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)
    writes = len(cluster.audit)

    again = executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert again.noop and again.changes == ()
    assert len(cluster.audit) == writes
    assert _selector(cluster)["slot"] == "green"


def test_refuses_a_slot_scaled_to_zero(cluster: KubeEmulator, apis: KubeApis) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service()
    plan = executor.plan(service)
    _scale(apis, "checkout-green", 0)
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


def test_refuses_a_slot_with_no_available_replicas(cluster: KubeEmulator, apis: KubeApis) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service()
    plan = executor.plan(service)
    _crash_green(cluster, apis)

    with pytest.raises(ExecutionError) as refused:
        executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert str(refused.value) == (
        "green slot checkout-green has 0 available replicas; refusing to switch traffic to it"
    )
    assert _selector(cluster)["slot"] == "blue"


def test_refuses_when_the_live_slot_is_not_in_the_catalog(
    cluster: KubeEmulator, apis: KubeApis
) -> None:
    apis.core.patch_namespaced_service("checkout", NS, {"spec": {"selector": {"slot": "purple"}}})

    with pytest.raises(ExecutionError) as refused:
        BlueGreenExecutor(apis).plan(_service())

    assert "selects slot=purple, which is none of the catalog's slots (blue, green)" in str(
        refused.value
    )


def test_a_chosen_target_among_three_slots(cluster: KubeEmulator, apis: KubeApis) -> None:
    create(apis, _deployment("checkout-red", "red", 1, "shop/checkout:v0"))
    _settled(cluster, "checkout-red", 1)
    slots = {"blue": "checkout-blue", "green": "checkout-green", "red": "checkout-red"}
    service = _service(slots)
    executor = BlueGreenExecutor(apis)
    default = executor.plan(service)
    assert default.detail["target_slot"] == "green"
    assert default.warnings == ("chose slot green; red could also take the traffic",)

    plan = executor.plan(service, target_slot="red")
    executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert _selector(cluster)["slot"] == "red"
    assert executor.verify(service, plan, drill=False).ok


def test_a_conflict_mid_switch_is_retried(cluster: KubeEmulator, apis: KubeApis) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service()
    plan = executor.plan(service)
    cluster.inject_faults(resource="services", namespace=NS, name="checkout", conflicts=2)

    result = executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert not result.noop
    assert _selector(cluster)["slot"] == "green"


def test_conflicts_past_the_budget_are_a_retryable_error(
    cluster: KubeEmulator, apis: KubeApis
) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service()
    plan = executor.plan(service)
    cluster.inject_faults(
        resource="services", namespace=NS, name="checkout", conflicts=WRITE_ATTEMPTS
    )

    with pytest.raises(ExecutionError) as failed:
        executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert failed.value.retryable
    assert "HTTP 409" in str(failed.value)
    assert _selector(cluster)["slot"] == "blue"
    # The budget is spent on the faults, so the next try goes through.
    executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)
    assert _selector(cluster)["slot"] == "green"


def test_server_errors_are_retried_then_reported_as_retryable(
    cluster: KubeEmulator, apis: KubeApis
) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service()
    plan = executor.plan(service)
    cluster.inject_faults(resource="services", namespace=NS, name="checkout", errors=2, status=503)
    executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)
    assert _selector(cluster)["slot"] == "green"

    back = executor.plan(service)  # green -> blue
    cluster.inject_faults(resource="services", namespace=NS, name="checkout", errors=50)
    with pytest.raises(ExecutionError) as failed:
        executor.apply_step(service, back, step=0, actor=ALICE, drill=False)

    assert failed.value.retryable
    assert "HTTP 500" in str(failed.value)
    assert _selector(cluster)["slot"] == "green"


def test_a_drill_changes_nothing(cluster: KubeEmulator, apis: KubeApis) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service()
    plan = executor.plan(service)
    before = cluster.dump()

    result = executor.apply_step(
        service, plan, step=0, actor=Actor("U0ALICE", kube_user="alice"), drill=True
    )

    assert cluster.dump() == before
    assert [c.dry_run for c in result.changes] == [True]
    writes = [e for e in cluster.audit if e["verb"] == "patch" and e["resource"] == "services"]
    assert [(e["user"], e["dryRun"]) for e in writes] == [("alice", True)]
    assert executor.verify(service, plan, drill=True).ok


def test_verify_is_not_done_while_the_target_is_not_fully_available(
    cluster: KubeEmulator, apis: KubeApis
) -> None:
    executor = BlueGreenExecutor(apis)
    service = _service()
    plan = executor.plan(service)
    executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)
    _crash_green(cluster, apis)

    verification = executor.verify(service, plan, drill=False)

    assert not verification.ok and not verification.done
    assert "0/2 available" in verification.detail
