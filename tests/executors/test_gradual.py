"""Gradual rollback over the Kubernetes emulator, with both traffic drivers: replica
counts and the ingress-nginx canary weight after every step, idempotent steps,
retried conflicts and server errors, and drills that change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from rollback_bot.catalog import Service
from rollback_bot.executors.gradual import CANARY, CANARY_WEIGHT, GradualExecutor, canary_share
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.model import Actor, ExecutionError
from sandbox.stack import deployment_manifest
from tests.executors.conftest import create
from tests.support.backend import Backend, Scoped

ALICE = Actor(slack_user="U0ALICE")


@pytest.fixture
def tracks(kube_backend: Backend, ns: str) -> Scoped:
    return Scoped(kube_backend, ns)


def _service(ns: str, **gradual: Any) -> Service:
    return Service.model_validate(
        {
            "name": "checkout",
            "namespace": ns,
            "deployment": "checkout",
            "channel": "C0ALERTS",
            "match": {"service": "checkout"},
            "strategy": "gradual",
            "gradual": {"stable": "checkout", "canary": "checkout-canary", **gradual},
        }
    )


def _deployment(name: str, track: str, replicas: int, image: str) -> dict[str, Any]:
    return deployment_manifest(
        name, image, replicas=replicas, labels={"app": "checkout", "track": track}
    )


def _ingress(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "checkout.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {"name": "checkout-canary", "port": {"number": 80}}
                                },
                            }
                        ]
                    },
                }
            ],
        },
    }


def _settled(tracks: Scoped, name: str) -> None:
    def done() -> bool:
        obj = tracks.get("deployments", name) or {}
        status = obj.get("status") or {}
        want = obj["spec"]["replicas"]
        return (
            status.get("observedGeneration") == obj["metadata"]["generation"]
            and int(status.get("availableReplicas") or 0) == want
            and int(status.get("replicas") or 0) == want
        )

    tracks.wait_for(done)


def _start(tracks: Scoped, apis: KubeApis, *, stable: int, canary: int) -> None:
    create(apis, _deployment("checkout", "stable", stable, "shop/checkout:v1"), tracks.ns)
    create(apis, _deployment("checkout-canary", "canary", canary, "shop/checkout:v2"), tracks.ns)
    _settled(tracks, "checkout")
    _settled(tracks, "checkout-canary")


def _replicas(tracks: Scoped) -> tuple[int, int]:
    stable = tracks.get("deployments", "checkout") or {}
    canary = tracks.get("deployments", "checkout-canary") or {}
    return stable["spec"]["replicas"], canary["spec"]["replicas"]


def _weight(tracks: Scoped) -> str:
    ingress = tracks.get("ingresses", "checkout-canary") or {}
    return str(ingress["metadata"]["annotations"][CANARY_WEIGHT])


def test_canary_share_rounds_half_up() -> None:
    assert [canary_share(10, p) for p in (50, 20, 5, 0)] == [5, 2, 1, 0]
    assert canary_share(5, 50) == 3
    assert canary_share(4, 5) == 0


def test_replica_driver_moves_traffic_step_by_step(tracks: Scoped, apis: KubeApis) -> None:
    _start(tracks, apis, stable=2, canary=8)
    service = _service(tracks.ns, steps=[60, 30, 10, 0])
    executor = GradualExecutor(apis)
    plan = executor.plan(service)
    assert plan.steps == (60, 30, 10, 0)
    assert plan.detail["total"] == 10
    assert (plan.from_image, plan.to_image) == ("shop/checkout:v2", "shop/checkout:v1")

    seen = []
    for step in range(len(plan.steps)):
        result = executor.apply_step(service, plan, step=step, actor=ALICE, drill=False)
        assert result.finished == (step == 3)
        seen.append(_replicas(tracks))
        _settled(tracks, "checkout")

    assert seen == [(4, 6), (7, 3), (9, 1), (10, 0)]
    verification = executor.verify(service, plan, drill=False)
    assert verification.ok and verification.done, verification.detail


def test_stable_is_scaled_up_before_the_canary_is_scaled_down(
    tracks: Scoped, apis: KubeApis
) -> None:
    _start(tracks, apis, stable=2, canary=2)
    service = _service(tracks.ns)
    executor = GradualExecutor(apis)
    plan = executor.plan(service)

    result = executor.apply_step(service, plan, step=1, actor=ALICE, drill=False)  # 20%

    assert [(c.name, c.summary) for c in result.changes] == [
        ("checkout", "replicas 2 -> 3"),
        ("checkout-canary", "replicas 2 -> 1"),
    ]
    patched = [e["name"] for e in tracks.audit if e["verb"] == "patch"]
    assert patched == ["checkout", "checkout-canary"]


def test_stable_never_goes_below_its_plan_time_count(tracks: Scoped, apis: KubeApis) -> None:
    _start(tracks, apis, stable=3, canary=1)  # 25% on the canary
    service = _service(tracks.ns)
    executor = GradualExecutor(apis)
    plan = executor.plan(service)

    first = executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)  # 50%

    assert first.noop and first.changes == ()
    assert _replicas(tracks) == (3, 1)  # neither stable down nor canary up


def test_reapplying_a_step_is_a_noop(tracks: Scoped, apis: KubeApis) -> None:
    _start(tracks, apis, stable=2, canary=2)
    service = _service(tracks.ns)
    executor = GradualExecutor(apis)
    plan = executor.plan(service)
    executor.apply_step(service, plan, step=1, actor=ALICE, drill=False)
    writes = len(tracks.audit)

    again = executor.apply_step(service, plan, step=1, actor=ALICE, drill=False)

    assert again.noop
    assert len(tracks.audit) == writes
    assert _replicas(tracks) == (3, 1)


def test_ingress_driver_writes_the_canary_weight_per_step(tracks: Scoped, apis: KubeApis) -> None:
    _start(tracks, apis, stable=2, canary=1)
    create(apis, _ingress("checkout-canary", {CANARY: "true", CANARY_WEIGHT: "100"}), tracks.ns)
    service = _service(tracks.ns, driver="ingress", canary_ingress="checkout-canary")
    executor = GradualExecutor(apis)
    plan = executor.plan(service)
    assert plan.detail["initial_weight"] == "100"

    weights = []
    for step in range(len(plan.steps)):
        executor.apply_step(service, plan, step=step, actor=ALICE, drill=False)
        weights.append(_weight(tracks))

    assert weights == ["50", "20", "5", "0"]
    assert _replicas(tracks) == (2, 1)  # the ingress driver leaves replicas alone
    assert executor.verify(service, plan, drill=False).ok
    assert executor.apply_step(service, plan, step=3, actor=ALICE, drill=False).noop


def test_refuses_an_ingress_that_is_not_a_canary(tracks: Scoped, apis: KubeApis) -> None:
    _start(tracks, apis, stable=1, canary=1)
    create(apis, _ingress("checkout-canary", {}), tracks.ns)
    service = _service(tracks.ns, driver="ingress", canary_ingress="checkout-canary")

    with pytest.raises(ExecutionError) as refused:
        GradualExecutor(apis).plan(service)

    assert str(refused.value) == (
        f"ingress {tracks.ns}/checkout-canary is not an ingress-nginx canary "
        '(nginx.ingress.kubernetes.io/canary is not "true"); refusing to steer traffic with it'
    )


@pytest.mark.emulator_only
def test_a_conflict_on_the_ingress_is_retried(tracks: Scoped, apis: KubeApis) -> None:
    _start(tracks, apis, stable=1, canary=1)
    create(apis, _ingress("checkout-canary", {CANARY: "true", CANARY_WEIGHT: "100"}), tracks.ns)
    service = _service(tracks.ns, driver="ingress", canary_ingress="checkout-canary")
    executor = GradualExecutor(apis)
    plan = executor.plan(service)
    tracks.inject_faults(resource="ingresses", name="checkout-canary", conflicts=3)

    executor.apply_step(service, plan, step=0, actor=ALICE, drill=False)

    assert _weight(tracks) == "50"


@pytest.mark.emulator_only
def test_server_errors_on_scaling_are_retried_then_retryable(
    tracks: Scoped, apis: KubeApis
) -> None:
    _start(tracks, apis, stable=2, canary=2)
    service = _service(tracks.ns)
    executor = GradualExecutor(apis)
    plan = executor.plan(service)
    tracks.inject_faults(resource="deployments", name="checkout", errors=2)
    executor.apply_step(service, plan, step=1, actor=ALICE, drill=False)
    assert _replicas(tracks) == (3, 1)

    tracks.inject_faults(resource="deployments", name="checkout", errors=50)
    with pytest.raises(ExecutionError) as failed:
        executor.apply_step(service, plan, step=2, actor=ALICE, drill=False)

    assert failed.value.retryable
    assert "scaling deployment shop/checkout" in str(failed.value)
    assert _replicas(tracks) == (3, 1)  # canary untouched when stable could not grow


def test_a_drill_changes_nothing(tracks: Scoped, apis: KubeApis) -> None:
    _start(tracks, apis, stable=2, canary=2)
    create(apis, _ingress("checkout-canary", {CANARY: "true", CANARY_WEIGHT: "100"}), tracks.ns)
    before = tracks.dump()
    for service in (
        _service(tracks.ns),
        _service(tracks.ns, driver="ingress", canary_ingress="checkout-canary"),
    ):
        executor = GradualExecutor(apis)
        plan = executor.plan(service)
        for step in range(len(plan.steps)):
            result = executor.apply_step(service, plan, step=step, actor=ALICE, drill=True)
            assert all(c.dry_run for c in result.changes)
        assert executor.verify(service, plan, drill=True).ok

    assert tracks.dump() == before
    assert {e["dryRun"] for e in tracks.audit if e["verb"] == "patch"} == {True}


def test_a_step_outside_the_plan_is_refused(tracks: Scoped, apis: KubeApis) -> None:
    _start(tracks, apis, stable=1, canary=1)
    service = _service(tracks.ns)
    executor = GradualExecutor(apis)
    plan = executor.plan(service)

    with pytest.raises(ExecutionError, match=r"step 4 does not exist; .* steps 0\.\.3"):
        executor.apply_step(service, plan, step=4, actor=ALICE, drill=False)
