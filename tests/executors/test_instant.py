"""The instant executor against the loopback cluster, compared with kubectl itself."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from rollback_bot.executors import instant
from rollback_bot.executors.instant import InstantExecutor, running_release
from rollback_bot.executors.kept_reads import first_step_reads
from rollback_bot.executors.undo import rollback_annotations
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.model import Actor, ExecutionError
from rollback_bot.kube.rollout import rollout_status
from sandbox.kube import KubeEmulator
from tests.executors.conftest import Cluster, MemorySnapshotStore, make_service, poll
from tests.support.backend import REAL, Backend

ACTOR = Actor("U0BOB")
CAUSE = "kubernetes.io/change-cause"


def executor(apis: KubeApis, store: MemorySnapshotStore, **kw: Any) -> InstantExecutor:
    """A short backoff: on the real plane the controller may still be writing a Deployment's
    status from the last release when the rollback starts, and conflicts re-read after it."""
    return InstantExecutor(apis, store, **{"backoff_seconds": 0.1, **kw})


def release(cluster: Cluster, namespace: str, image: str, cause: str, **env: str) -> None:
    """One new version, its change-cause annotated in the same write (as ``--record`` did)."""
    container: dict[str, Any] = {"name": "app", "image": image}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    patch = {
        "metadata": {"annotations": {CAUSE: cause}},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }
    cluster.patch("checkout", patch, namespace)


def three_revisions(cluster: Cluster, namespace: str | None = None) -> None:
    """checkout at v1, v2 (new env and change-cause), v3: revision 3 live."""
    namespace = namespace or cluster.ns
    cluster.create(
        "checkout",
        "shop/checkout:v1",
        namespace,
        env={"MODE": "safe"},
        annotations={CAUSE: "release v1", "team": "payments"},
    )
    release(cluster, namespace, "shop/checkout:v2", "release v2", MODE="fast")
    cluster.wait_revision("checkout", 2, namespace)
    release(cluster, namespace, "shop/checkout:v3", "release v3")
    cluster.wait_revision("checkout", 3, namespace)


def kubectl(backend: Backend, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """kubectl itself: on the real plane the one pinned to the server's version."""
    return backend.kubectl(tmp_path, *args)


def outcome(backend: Backend, namespace: str) -> dict[str, Any]:
    """What kubectl's and our rollback must agree on."""
    deployment = backend.get("deployments", namespace, "checkout")
    assert deployment is not None
    replicasets = {
        rs["metadata"]["name"]: (rs["metadata"].get("annotations"), rs["spec"]["template"])
        for rs in backend.list("replicasets", namespace)
    }
    return {
        "template": deployment["spec"]["template"],
        "annotations": deployment["metadata"].get("annotations"),
        "replicasets": replicasets,
    }


def settle(cluster: Cluster, revision: int, *namespaces: str) -> None:
    """Both controllers done: the revision stamped and the rollout complete."""
    for ns in namespaces:
        cluster.wait_revision("checkout", revision, ns)
    cluster.wait(
        lambda: all(rollout_status(cluster.deployment("checkout", ns)).ok for ns in namespaces)
    )


@pytest.mark.parametrize("to_revision", [None, 1])
def test_end_state_is_identical_to_kubectl_rollout_undo(
    kube_backend: Backend,
    apis: KubeApis,
    cluster: Cluster,
    store: MemorySnapshotStore,
    tmp_path: Path,
    to_revision: int | None,
) -> None:
    shop_a, shop_b = cluster.namespace("shop-a"), cluster.namespace("shop-b")
    three_revisions(cluster, shop_a)
    three_revisions(cluster, shop_b)
    args = ["rollout", "undo", "deployment/checkout", "-n", shop_a]
    if to_revision:
        args.append(f"--to-revision={to_revision}")
    done = kubectl(kube_backend, tmp_path, *args)
    assert done.returncode == 0, done.stderr
    ex = executor(apis, store)
    service = make_service(namespace=shop_b)
    plan = ex.plan(service, to_revision=to_revision)
    result = ex.apply_step(service, plan, step=0, actor=ACTOR, drill=False)
    assert result.finished and not result.noop
    settle(cluster, 4, shop_a, shop_b)
    ours, theirs = outcome(kube_backend, shop_b), outcome(kube_backend, shop_a)
    assert ours["template"] == theirs["template"]
    assert ours["annotations"] == theirs["annotations"]
    assert ours["replicasets"].keys() == theirs["replicasets"].keys()
    for name, (rs_annotations, template) in ours["replicasets"].items():
        assert (name, rs_annotations) == (name, theirs["replicasets"][name][0])
        assert (name, template) == (name, theirs["replicasets"][name][1])
    expected_image = "shop/checkout:v1" if to_revision else "shop/checkout:v2"
    template = outcome(kube_backend, shop_b)["template"]
    assert template["spec"]["containers"][0]["image"] == expected_image
    assert "pod-template-hash" not in template["metadata"]["labels"]


def test_plan_describes_the_previous_revision(
    apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    three_revisions(cluster)
    plan = executor(apis, store).plan(make_service(namespace=cluster.ns))
    assert (plan.from_revision, plan.to_revision) == (3, 2)
    assert (plan.from_image, plan.to_image) == ("shop/checkout:v3", "shop/checkout:v2")
    assert "image (app): shop/checkout:v3 -> shop/checkout:v2" in plan.changes
    assert plan.detail["noop"] is False


def test_the_running_release_is_the_plans_from_side_in_one_read(
    apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    """An approval's drift check reads this instead of planning again: they must agree."""
    three_revisions(cluster)
    service = make_service(namespace=cluster.ns)
    plan = executor(apis, store).plan(service)
    assert running_release(apis, service) == (plan.from_revision, plan.from_image)
    release(cluster, cluster.ns, "shop/checkout:v4", "hotfix")
    cluster.wait_revision("checkout", 4, cluster.ns)
    assert running_release(apis, service) == (4, "shop/checkout:v4")


def test_already_at_the_revision_is_a_noop(
    kube_backend: Backend, apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    three_revisions(cluster)
    ex = executor(apis, store)
    service = make_service(namespace=cluster.ns)
    plan = ex.plan(service, to_revision=2)
    ex.apply_step(service, plan, step=0, actor=ACTOR, drill=False)
    cluster.wait_revision("checkout", 4)
    patches = len([e for e in kube_backend.writes(cluster.ns) if e["verb"] == "patch"])
    again = ex.apply_step(service, plan, step=0, actor=ACTOR, drill=False)
    assert again.noop and again.finished and again.changes == ()
    assert "already at revision 4" in again.message
    assert len([e for e in kube_backend.writes(cluster.ns) if e["verb"] == "patch"]) == patches
    assert ex.plan(service, to_revision=4).detail["noop"] is True


def test_missing_revision_is_refused_with_kubectls_words(
    apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    three_revisions(cluster)
    with pytest.raises(
        ExecutionError, match="unable to find specified revision 9 in history"
    ) as exc:
        executor(apis, store).plan(make_service(namespace=cluster.ns), to_revision=9)
    assert not exc.value.retryable


def test_no_history_is_refused(
    apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    cluster.create("checkout", "shop/checkout:v1")
    with pytest.raises(ExecutionError, match='no rollout history found for deployment "checkout"'):
        executor(apis, store).plan(make_service(namespace=cluster.ns))


def test_missing_deployment_names_it(
    apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    with pytest.raises(ExecutionError, match=f"deployment {cluster.ns}/checkout not found"):
        executor(apis, store).plan(make_service(namespace=cluster.ns))


def test_paused_deployment_is_refused_and_untouched(
    kube_backend: Backend, apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    three_revisions(cluster)
    ex = executor(apis, store)
    plan = ex.plan(make_service(namespace=cluster.ns))
    cluster.patch("checkout", {"spec": {"paused": True}})
    assert any("paused" in w for w in ex.plan(make_service(namespace=cluster.ns)).warnings)
    before = cluster.deployment("checkout")
    writes = len([e for e in kube_backend.writes(cluster.ns) if e["verb"] == "patch"])
    with pytest.raises(ExecutionError, match="you cannot rollback a paused deployment") as exc:
        ex.apply_step(make_service(namespace=cluster.ns), plan, step=0, actor=ACTOR, drill=False)
    assert not exc.value.retryable
    after = cluster.deployment("checkout")
    assert (after["spec"], after["metadata"]["annotations"]) == (
        before["spec"],
        before["metadata"]["annotations"],
    )
    assert len([e for e in kube_backend.writes(cluster.ns) if e["verb"] == "patch"]) == writes


@pytest.mark.emulator_only
def test_conflicts_are_retried_after_a_fresh_read(
    emu: KubeEmulator, apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    three_revisions(cluster)
    ex = executor(apis, store, conflict_retries=3)
    plan = ex.plan(make_service(namespace=cluster.ns))
    emu.inject_faults(resource="deployments", namespace=cluster.ns, name="checkout", conflicts=2)
    result = ex.apply_step(
        make_service(namespace=cluster.ns), plan, step=0, actor=ACTOR, drill=False
    )
    assert not result.noop
    cluster.wait_revision("checkout", 4)
    patches = [e for e in emu.audit if e["verb"] == "patch" and e["resource"] == "deployments"]
    assert len(patches) >= 3


def test_a_stale_resource_version_answers_409_and_is_redecided(
    kube_backend: Backend, apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    """A concurrent change between our read and our patch must not be overwritten blindly."""
    three_revisions(cluster)
    # The product's backoff: on a real plane the controller keeps writing the Deployment's
    # status while the concurrent scale settles, so every re-read must not be immediate.
    ex = executor(apis, store, backoff_seconds=0.2)
    service = make_service(namespace=cluster.ns)
    plan = ex.plan(service)
    real_read = ex._read
    calls = {"n": 0}

    def read_then_race(svc: Any) -> Any:
        seen = real_read(svc)
        calls["n"] += 1
        if calls["n"] == 1:  # someone scales the Deployment right after our read
            cluster.patch("checkout", {"spec": {"replicas": 3}})
        return seen

    ex._read = read_then_race  # type: ignore[method-assign]
    result = ex.apply_step(service, plan, step=0, actor=ACTOR, drill=False)
    assert calls["n"] >= 2 and not result.noop  # the controller may bump it once more
    if kube_backend.name == REAL:  # the apiserver itself refused the stale write
        codes = [w["code"] for w in kube_backend.writes(cluster.ns) if w["verb"] == "patch"]
        assert 409 in codes
    final = cluster.deployment("checkout")
    assert final["spec"]["replicas"] == 3  # the concurrent change survived
    assert final["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/checkout:v2"


def counting_reads(ex: InstantExecutor, calls: list[str], *, then: Any = None) -> None:
    """Count the executor's reads of the Deployment and its ReplicaSets (``then`` runs
    after the first one)."""
    real_read = ex._read

    def read(svc: Any, deployment: Any = None) -> Any:
        seen = real_read(svc, deployment)
        calls.append(svc.deployment)
        if then is not None and len(calls) == 1:
            then()
        return seen

    ex._read = read  # type: ignore[method-assign]


def planned(apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore) -> tuple[Any, Any]:
    """Three revisions, the service and its plan back to revision 2."""
    three_revisions(cluster)
    settle(cluster, 3, cluster.ns)
    service = make_service(namespace=cluster.ns)
    return service, executor(apis, store).plan(service)


def runs_v2(cluster: Cluster) -> dict[str, Any]:
    """The Deployment once it runs revision 2's image (asserted)."""
    deployment = cluster.deployment("checkout")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/checkout:v2"
    return deployment


def test_the_first_step_takes_what_the_snapshot_read(
    kube_backend: Backend, apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    """Begin and first step in one job: one read, and the checkpoint is not filed twice."""
    service, plan = planned(apis, cluster, store)
    calls: list[str] = []
    with first_step_reads():
        begin, step = executor(apis, store), executor(apis, store)  # fresh, as routed
        counting_reads(begin, calls)
        counting_reads(step, calls)
        begin.snapshot(service)
        result = step.apply_step(service, plan, step=0, actor=ACTOR, drill=False)
    assert not result.noop
    # Every read a write was built on is checkpointed once: the kept one by the snapshot.
    assert len(store.batches) == len(calls)
    if kube_backend.name != REAL:  # a real controller may still write status: 409, re-read
        assert calls == ["checkout"]
    cluster.wait_revision("checkout", 4)
    runs_v2(cluster)


def test_a_change_after_the_snapshot_is_not_overwritten_by_its_kept_read(
    apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    """The kept read is stale: the write answers 409, the retry reads afresh and saves it."""
    service, plan = planned(apis, cluster, store)
    calls: list[str] = []
    with first_step_reads():
        ex = executor(apis, store, backoff_seconds=0.2)
        counting_reads(ex, calls, then=lambda: cluster.patch("checkout", {"spec": {"replicas": 3}}))
        ex.snapshot(service)
        result = ex.apply_step(service, plan, step=0, actor=ACTOR, drill=False)
    assert not result.noop and len(calls) >= 2
    assert len(store.batches) >= 2  # the fresh read was checkpointed before its write
    assert runs_v2(cluster)["spec"]["replicas"] == 3


def test_the_checkpoint_takes_the_deployment_the_approval_read(
    kube_backend: Backend,
    apis: KubeApis,
    cluster: Cluster,
    store: MemorySnapshotStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An approval's drift check reads the Deployment in the block its job goes on in: the
    checkpoint lists only the ReplicaSets, and files the Deployment the approval saw."""
    service, plan = planned(apis, cluster, store)
    gets: list[dict[str, Any]] = []
    real_get = instant.read_deployment

    def get(apis_: KubeApis, namespace: str, name: str) -> dict[str, Any]:
        gets.append(real_get(apis_, namespace, name))
        return gets[-1]

    monkeypatch.setattr(instant, "read_deployment", get)
    with first_step_reads():
        running_release(apis, service)  # the approval's check
        seen = gets[0]["metadata"]["resourceVersion"]
        ex = executor(apis, store)
        records = ex.snapshot(service)
        result = ex.apply_step(service, plan, step=0, actor=ACTOR, drill=False)
    assert not result.noop
    deployment = next(r for r in records if r.kind == "deployment")
    assert deployment.body["metadata"]["resourceVersion"] == seen
    if kube_backend.name != REAL:  # a real controller may still write status: 409, re-read
        assert len(gets) == 1  # the approval's read, and no other
    cluster.wait_revision("checkout", 4)
    runs_v2(cluster)


def test_outside_a_first_step_block_nothing_is_kept(
    kube_backend: Backend, apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    service, plan = planned(apis, cluster, store)
    calls: list[str] = []
    ex = executor(apis, store)
    counting_reads(ex, calls)
    ex.snapshot(service)  # one GET of the Deployment alone, not ``_read``
    ex.apply_step(service, plan, step=0, actor=ACTOR, drill=False)
    # The step read for itself, and checkpointed each read beside the snapshot's own batch.
    assert calls and set(calls) == {"checkout"} and len(store.batches) == 1 + len(calls)
    if kube_backend.name != REAL:  # a real controller may still write status: 409, re-read
        assert calls == ["checkout"]


@pytest.mark.emulator_only
def test_conflicts_past_the_budget_stop_with_nothing_changed(
    emu: KubeEmulator, apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    three_revisions(cluster)
    ex = executor(apis, store, conflict_retries=2)
    plan = ex.plan(make_service(namespace=cluster.ns))
    emu.inject_faults(resource="deployments", namespace=cluster.ns, name="checkout", conflicts=5)
    with pytest.raises(ExecutionError, match="kept changing") as exc:
        ex.apply_step(make_service(namespace=cluster.ns), plan, step=0, actor=ACTOR, drill=False)
    assert exc.value.retryable
    assert "the deployment was not patched" in str(exc.value)
    assert cluster.revision("checkout") == 3


@pytest.mark.emulator_only
def test_server_errors_are_retried_with_backoff(
    emu: KubeEmulator, apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    three_revisions(cluster)
    # A controller's status write between the executor's read and its PATCH is a 409, whose
    # retry sleeps too: only a settled Deployment makes the sleeps the server errors' alone.
    cluster.quiet()
    sleeps: list[float] = []
    ex = InstantExecutor(apis, store, server_retries=3, backoff_seconds=0.01, sleep=sleeps.append)
    plan = ex.plan(make_service(namespace=cluster.ns))
    emu.inject_faults(
        resource="deployments", namespace=cluster.ns, name="checkout", errors=2, status=503
    )
    result = ex.apply_step(
        make_service(namespace=cluster.ns), plan, step=0, actor=ACTOR, drill=False
    )
    assert not result.noop
    assert sleeps == [0.01, 0.02]
    cluster.wait_revision("checkout", 4)


@pytest.mark.emulator_only
def test_server_errors_past_the_budget_are_retryable_and_say_what_happened(
    emu: KubeEmulator, apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    three_revisions(cluster)
    ex = executor(apis, store, server_retries=1)
    plan = ex.plan(make_service(namespace=cluster.ns))
    emu.inject_faults(
        resource="deployments", namespace=cluster.ns, name="checkout", errors=5, status=500
    )
    with pytest.raises(ExecutionError) as exc:
        ex.apply_step(make_service(namespace=cluster.ns), plan, step=0, actor=ACTOR, drill=False)
    assert exc.value.retryable
    assert "HTTP 500" in str(exc.value)
    assert "the deployment was not patched" in str(exc.value)
    assert cluster.revision("checkout") == 3


def test_drill_changes_nothing_but_reports_the_changes(
    kube_backend: Backend, apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    cluster.configmap("checkout-config", {"MODE": "safe"})
    cluster.create("checkout", "shop/checkout:v1", configmap="checkout-config")
    ex = executor(apis, store)
    service = make_service(namespace=cluster.ns)
    ex.snapshot(service)
    cluster.configmap("checkout-config", {"MODE": "fast"})
    cluster.roll("checkout", "shop/checkout:v2", revision=2)
    # The controller keeps writing status until the rollout completes; a dump taken before
    # then changes under the drill with nothing the drill did.
    cluster.wait(lambda: _rolled_out(cluster.deployment("checkout")))
    plan = ex.plan(service)
    saved = len(store.batches)
    cluster.quiet()
    before = kube_backend.fingerprint(cluster.ns)
    result = ex.apply_step(service, plan, step=0, actor=ACTOR, drill=True)
    assert kube_backend.fingerprint(cluster.ns) == before
    assert len(store.batches) == saved
    assert {(c.kind, c.dry_run) for c in result.changes} == {
        ("ConfigMap", True),
        ("Deployment", True),
    }
    assert result.message.startswith("drill, nothing changed: would roll back")
    writes = [
        e for e in kube_backend.writes(cluster.ns) if e["verb"] in ("patch", "update", "create")
    ][-2:]
    assert all(e["dryRun"] for e in writes)
    assert ex.verify(service, plan, drill=True).ok


def _rolled_out(deployment: dict[str, Any]) -> bool:
    status, spec = deployment.get("status") or {}, deployment["spec"]
    want = spec.get("replicas", 1)
    return (
        status.get("observedGeneration") == deployment["metadata"].get("generation")
        and status.get("replicas") == status.get("updatedReplicas") == want
        and status.get("availableReplicas") == want
    )


def test_configmaps_the_target_ran_with_are_restored(
    kube_backend: Backend, apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    cluster.configmap("checkout-config", {"MODE": "safe", "OLD": "1"})
    cluster.create("checkout", "shop/checkout:v1", configmap="checkout-config")
    ex = executor(apis, store)
    service = make_service(namespace=cluster.ns)
    ex.snapshot(service)  # the checkpoint taken while revision 1 is live
    cluster.configmap("checkout-config", {"MODE": "fast", "OLD": None, "NEW": "2"})  # type: ignore[dict-item]
    cluster.roll("checkout", "shop/checkout:v2", revision=2)
    plan = ex.plan(service)
    assert "configmap/checkout-config key MODE: fast -> safe" in plan.changes
    assert "configmap/checkout-config key NEW: 2 -> (unset)" in plan.changes
    result = ex.apply_step(service, plan, step=0, actor=ACTOR, drill=False)
    assert [c.kind for c in result.changes] == ["ConfigMap", "Deployment"]
    stored = kube_backend.get("configmaps", cluster.ns, "checkout-config")
    assert stored is not None and stored["data"] == {"MODE": "safe", "OLD": "1"}
    # The checkpoint before the change recorded the state being left.
    last = store.batches[-1]
    assert [r.kind for r in last] == ["deployment", "configmap"] and last[0].revision == 2


def test_a_third_version_since_the_plan_is_refused(
    apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    three_revisions(cluster)
    ex = executor(apis, store)
    plan = ex.plan(make_service(namespace=cluster.ns))
    cluster.roll("checkout", "shop/checkout:v4", revision=4)
    with pytest.raises(ExecutionError, match="changed since the plan was made"):
        ex.apply_step(make_service(namespace=cluster.ns), plan, step=0, actor=ACTOR, drill=False)
    assert cluster.revision("checkout") == 4


@pytest.mark.emulator_only
def test_writes_impersonate_the_actor(
    emu: KubeEmulator, apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    three_revisions(cluster)
    ex = executor(apis, store)
    plan = ex.plan(make_service(namespace=cluster.ns))
    actor = Actor("U0BOB", kube_user="bob@example.com", kube_groups=("sre",))
    ex.apply_step(make_service(namespace=cluster.ns), plan, step=0, actor=actor, drill=False)
    patch = [e for e in emu.audit if e["verb"] == "patch" and e["resource"] == "deployments"][-1]
    assert patch["user"] == "bob@example.com"
    assert "sre" in patch["groups"]


def test_verify_waits_for_the_rollout_then_passes(
    apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    three_revisions(cluster)
    ex = executor(apis, store)
    service = make_service(namespace=cluster.ns)
    plan = ex.plan(service)
    ex.apply_step(service, plan, step=0, actor=ACTOR, drill=False)
    poll(lambda: ex.verify(service, plan, drill=False).done)
    assert ex.verify(service, plan, drill=False).ok


def test_verify_fails_when_the_image_moved_on(
    apis: KubeApis, cluster: Cluster, store: MemorySnapshotStore
) -> None:
    three_revisions(cluster)
    ex = executor(apis, store)
    service = make_service(namespace=cluster.ns)
    plan = ex.plan(service)
    ex.apply_step(service, plan, step=0, actor=ACTOR, drill=False)
    cluster.wait_revision("checkout", 4)
    cluster.roll("checkout", "shop/checkout:v4", revision=5)
    verdict = ex.verify(service, plan, drill=False)
    assert verdict.done and not verdict.ok and "no longer runs the target" in verdict.detail


def test_annotations_follow_kubectls_rules() -> None:
    deployment = {
        "metadata": {
            "annotations": {
                "deployment.kubernetes.io/revision": "3",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "team": "now",
                "only-live": "x",
            }
        }
    }
    target = {
        "metadata": {
            "annotations": {
                "deployment.kubernetes.io/revision": "1",
                "deployment.kubernetes.io/desired-replicas": "2",
                "deployment.kubernetes.io/max-replicas": "3",
                "deployment.kubernetes.io/revision-history": "1",
                "team": "then",
            }
        }
    }
    assert rollback_annotations(deployment, target) == {
        "deployment.kubernetes.io/revision": "3",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "team": "then",
    }
