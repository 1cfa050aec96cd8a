"""StatefulSets and DaemonSets rolled back through their ControllerRevisions, beside kubectl.

Real control plane only: the emulator in ``sandbox/kube`` implements neither StatefulSets,
DaemonSets nor ControllerRevisions, and what matters here is the real controllers'
bookkeeping (which ControllerRevision is re-used and renumbered, what ``status`` says while
pods roll). Every comparison runs the pinned kubectl on one namespace and the bot on a
twin namespace with the same history, then compares what each left behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from rollback_bot.catalog import Service
from rollback_bot.executors.workload import WorkloadExecutor
from rollback_bot.kube.model import Actor, ExecutionError
from rollback_bot.kube.workloads import (
    list_workload_revisions,
    patch_workload,
    read_workload,
    undo_patch,
    workload_status,
)
from sandbox.realk8s import RealControlPlane
from tests.executors.conftest import REAL_WAIT, MemorySnapshotStore
from tests.support.backend import RealBackend, poll

ACTOR = Actor("U0BOB")
KINDS = ("statefulset", "daemonset")
PLURAL = {"statefulset": "statefulsets", "daemonset": "daemonsets"}


@pytest.fixture
def real(real_control_plane: RealControlPlane) -> Iterator[RealBackend]:
    backend = RealBackend(real_control_plane)
    try:
        yield backend
    finally:
        backend.close()


def body(kind: str, name: str, image: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image}]},
        },
        **extra,
    }
    if kind == "statefulset":
        spec.setdefault("replicas", 2)
        spec.setdefault("serviceName", name)
        spec.setdefault("podManagementPolicy", "Parallel")
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet" if kind == "statefulset" else "DaemonSet",
        "metadata": {"name": name},
        "spec": spec,
    }


def service(kind: str, namespace: str, name: str = "db") -> Service:
    return Service.model_validate(
        {
            "name": name,
            "namespace": namespace,
            kind: name,
            "channel": "C0ALERTS",
            "match": {"service": name},
        }
    )


class Workloads:
    def __init__(self, backend: RealBackend, kind: str) -> None:
        self.backend, self.kind, self.apis = backend, kind, backend.apis

    def get(self, ns: str, name: str = "db") -> dict[str, Any]:
        return read_workload(self.apis, self.kind, ns, name)

    def create(self, ns: str, image: str, name: str = "db", **extra: Any) -> None:
        manifest = body(self.kind, name, image, **extra)
        if self.kind == "statefulset":
            self.apis.apps.create_namespaced_stateful_set(ns, manifest)  # type: ignore[arg-type]
        else:
            self.apis.apps.create_namespaced_daemon_set(ns, manifest)  # type: ignore[arg-type]
        self.wait_revisions(ns, 1, name)

    def roll(self, ns: str, image: str, revisions: int, name: str = "db") -> None:
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
        patch_workload(self.apis, self.kind, ns, name, patch, dry_run=False)
        self.wait_revisions(ns, revisions, name)

    def history(self, ns: str, name: str = "db") -> dict[int, tuple[str, ...]]:
        return {r.number: r.images for r in list_workload_revisions(self.apis, self.kind, ns, name)}

    def wait_revisions(self, ns: str, count: int, name: str = "db") -> None:
        poll(lambda: len(self.history(ns, name)) >= count, REAL_WAIT, 0.1)

    def settled(self, ns: str, name: str = "db") -> bool:
        verdict = workload_status(self.kind, self.get(ns, name))
        return verdict.done and verdict.ok

    def wait_settled(self, ns: str, name: str = "db") -> None:
        poll(lambda: self.settled(ns, name), REAL_WAIT, 0.2)

    def three_releases(self, ns: str) -> None:
        self.create(ns, "shop/db:v1")
        self.wait_settled(ns)
        self.roll(ns, "shop/db:v2", 2)
        self.wait_settled(ns)
        self.roll(ns, "shop/db:v3", 3)
        self.wait_settled(ns)


def kubectl(backend: RealBackend, *args: str) -> str:
    done = backend.plane.kubectl(*args, check=False)
    assert done.returncode == 0, done.stderr
    return str(done.stdout)


def kubectl_history(backend: RealBackend, kind: str, ns: str) -> dict[int, tuple[str, ...]]:
    """``kubectl rollout history`` (the table), each revision's images from ``--revision``."""
    table = kubectl(backend, "-n", ns, "rollout", "history", f"{kind}/db")
    numbers = [int(line.split()[0]) for line in table.splitlines() if line[:1].isdigit()]
    out = {}
    for n in numbers:
        shown = json.loads(
            kubectl(
                backend,
                "-n",
                ns,
                "rollout",
                "history",
                f"{kind}/db",
                f"--revision={n}",
                "-o",
                "json",
            )
        )
        containers = shown["spec"]["template"]["spec"]["containers"]
        out[n] = tuple(c["image"] for c in containers)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_history_is_what_kubectl_rollout_history_shows(real: RealBackend, kind: str) -> None:
    w = Workloads(real, kind)
    ns = real.namespace("hist")
    w.three_releases(ns)
    ours = w.history(ns)
    assert ours == {1: ("shop/db:v1",), 2: ("shop/db:v2",), 3: ("shop/db:v3",)}
    assert ours == kubectl_history(real, kind, ns)


def outcome(w: Workloads, ns: str) -> dict[str, Any]:
    obj = w.get(ns)
    return {
        "template": obj["spec"]["template"],
        "annotations": obj["metadata"].get("annotations"),
        "history": w.history(ns),
    }


@pytest.mark.parametrize("to_revision", [None, 1])
@pytest.mark.parametrize("kind", KINDS)
def test_undo_ends_where_kubectl_rollout_undo_does(
    real: RealBackend, kind: str, to_revision: int | None
) -> None:
    w = Workloads(real, kind)
    by_hand, by_bot = real.namespace("kubectl"), real.namespace("bot")
    for ns in (by_hand, by_bot):
        w.three_releases(ns)
    flag = [f"--to-revision={to_revision}"] if to_revision else []
    kubectl(real, "-n", by_hand, "rollout", "undo", f"{kind}/db", *flag)

    store = MemorySnapshotStore()
    executor = WorkloadExecutor(real.apis, store, kind, backoff_seconds=0.1)
    svc = service(kind, by_bot)
    plan = executor.plan(svc, to_revision=to_revision)
    wanted = "shop/db:v1" if to_revision == 1 else "shop/db:v2"
    assert plan.to_image == wanted and plan.from_image == "shop/db:v3"
    result = executor.apply_step(svc, plan, step=0, actor=ACTOR, drill=False)
    assert result.finished and not result.noop
    assert [c.kind for c in result.changes] == [w.get(by_bot)["kind"]]

    for ns in (by_hand, by_bot):
        w.wait_revisions(ns, 3)
        poll(lambda ns=ns: max(w.history(ns)) == 4, REAL_WAIT, 0.1)  # type: ignore[misc]
        w.wait_settled(ns)
    assert outcome(w, by_bot) == outcome(w, by_hand)
    assert w.history(by_bot)[4] == (wanted,)
    # Verification is kubectl rollout status, word for word.
    verdict = executor.verify(svc, plan, drill=False)
    status = kubectl(real, "-n", by_bot, "rollout", "status", f"{kind}/db", "--watch=false")
    assert verdict.ok and verdict.done
    assert verdict.detail == status.strip()
    # A checkpoint of the workload was kept before the write.
    assert [r.kind for r in store.records] == [kind]


@pytest.mark.parametrize("kind", KINDS)
def test_the_undo_patch_carries_a_resource_version_precondition(
    real: RealBackend, kind: str
) -> None:
    w = Workloads(real, kind)
    ns = real.namespace("rv")
    w.three_releases(ns)
    stale = w.get(ns)
    # Someone else writes in between (an annotation: the template stays at v3).
    patch_workload(
        real.apis, kind, ns, "db", {"metadata": {"annotations": {"x": "y"}}}, dry_run=False
    )
    svc = service(kind, ns)
    executor = WorkloadExecutor(real.apis, MemorySnapshotStore(), kind)
    records = executor._read(svc, to_revision=None, pinned=None)
    with pytest.raises(ApiException) as refused:
        patch_workload(
            real.apis,
            kind,
            ns,
            "db",
            undo_patch(stale, records.data_of(records.target)),
            dry_run=False,
        )
    assert refused.value.status == 409
    assert w.get(ns)["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/db:v3"


@pytest.mark.parametrize("kind", KINDS)
def test_drill_is_a_server_side_dry_run_and_changes_nothing(real: RealBackend, kind: str) -> None:
    w = Workloads(real, kind)
    ns = real.namespace("drill")
    w.three_releases(ns)
    before = w.get(ns)["metadata"]["resourceVersion"]
    svc = service(kind, ns)
    executor = WorkloadExecutor(real.apis, MemorySnapshotStore(), kind)
    plan = executor.plan(svc)
    result = executor.apply_step(svc, plan, step=0, actor=ACTOR, drill=True)
    assert result.message.startswith("drill, nothing changed: would roll back")
    assert all(c.dry_run for c in result.changes)
    assert w.get(ns)["metadata"]["resourceVersion"] == before
    dry = [e for e in real.writes(ns) if e["resource"] == PLURAL[kind] and e["verb"] == "patch"]
    assert dry and dry[-1]["dryRun"] is True


def test_a_change_after_the_plan_stops_the_rollback(real: RealBackend) -> None:
    w = Workloads(real, "statefulset")
    ns = real.namespace("drift")
    w.three_releases(ns)
    svc = service("statefulset", ns)
    executor = WorkloadExecutor(real.apis, MemorySnapshotStore(), "statefulset")
    plan = executor.plan(svc)
    w.roll(ns, "shop/db:v4", 4)
    with pytest.raises(ExecutionError, match="changed since the plan was made"):
        executor.apply_step(svc, plan, step=0, actor=ACTOR, drill=False)
    assert w.get(ns)["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/db:v4"


def test_too_little_history_is_refused_in_kubectls_words(real: RealBackend) -> None:
    w = Workloads(real, "daemonset")
    ns = real.namespace("short")
    w.create(ns, "shop/db:v1")
    executor = WorkloadExecutor(real.apis, MemorySnapshotStore(), "daemonset")
    with pytest.raises(ExecutionError) as ours:
        executor.plan(service("daemonset", ns))
    by_hand = real.plane.kubectl("-n", ns, "rollout", "undo", "daemonset/db", check=False)
    assert by_hand.returncode != 0
    assert str(ours.value) in by_hand.stderr
    with pytest.raises(ExecutionError, match="unable to find specified revision 7 in history"):
        executor.plan(service("daemonset", ns), to_revision=7)


def test_on_delete_statefulset_is_rolled_back_without_pretending_pods_changed(
    real: RealBackend,
) -> None:
    w = Workloads(real, "statefulset")
    ns = real.namespace("ondelete")
    w.create(ns, "shop/db:v1", updateStrategy={"type": "OnDelete"})
    w.roll(ns, "shop/db:v2", 2)
    svc = service("statefulset", ns)
    executor = WorkloadExecutor(real.apis, MemorySnapshotStore(), "statefulset")
    plan = executor.plan(svc)
    assert "update strategy: OnDelete" in plan.changes
    assert "pods replaced: none until each is deleted (OnDelete)" in plan.changes
    assert any("keep the old one until each is deleted" in x for x in plan.warnings)
    assert any("volumes and data are NOT rolled back" in x for x in plan.warnings)
    executor.apply_step(svc, plan, step=0, actor=ACTOR, drill=False)
    verdict = executor.verify(svc, plan, drill=False)
    assert verdict.done and "running pods keep the old one until each is deleted" in verdict.detail
    assert "rolled out" not in verdict.detail and "complete" not in verdict.detail
    # kubectl itself refuses to report a rollout for OnDelete: there is none to wait for.
    by_hand = real.plane.kubectl("-n", ns, "rollout", "status", "statefulset/db", check=False)
    assert "only available for RollingUpdate" in by_hand.stderr
