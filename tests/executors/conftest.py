"""Fixtures for executor tests: a cluster, API bundles and an in-memory checkpoint store.

Tests run on both backends (``kube_backend``: ``emulator`` | ``real``, see
``tests/support/backend.py``). Every emulator test gets its own emulator (it starts in
milliseconds); every real-plane test gets fresh namespaces on the session's control plane
(``ns``), so tests cannot see each other's objects. ``emu`` is for tests marked
``emulator_only`` (fault injection, the exact ``emu.dump()``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from kubernetes import utils

from rollback_bot.catalog import Service
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.model import SnapshotRecord
from rollback_bot.kube.rollout import rollout_status
from sandbox.kube import KubeEmulator
from tests.support.backend import (
    EMULATOR_ONLY,
    Backend,
    EmulatorBackend,
    backend_params,
    open_backend,
)

NAMESPACE = "shop"
WAIT = 20.0  # generous: a loaded 2-core machine must not make these flaky
REAL_WAIT = 90.0  # the real controllers and kwok take seconds, more on a busy machine


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    backend_params(metafunc)


class MemorySnapshotStore:
    """``SnapshotStore`` kept in a list: a ConfigMap belongs to the Deployment saved with it."""

    def __init__(self) -> None:
        self.batches: list[list[SnapshotRecord]] = []

    def save(self, records: Sequence[SnapshotRecord]) -> None:
        self.batches.append([copy.deepcopy(r) for r in records])

    def configmaps_for_revision(
        self, *, namespace: str, deployment: str, revision: int
    ) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for batch in self.batches:  # later batches win: "as last seen"
            owner = next((r for r in batch if r.kind == "deployment"), None)
            if owner is None or (owner.namespace, owner.name) != (namespace, deployment):
                continue
            if owner.revision != revision:
                continue
            for record in batch:
                if record.kind == "configmap":
                    found[record.name] = copy.deepcopy(record.body)
        return found

    @property
    def records(self) -> list[SnapshotRecord]:
        return [r for batch in self.batches for r in batch]


@pytest.fixture
def kube_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from open_backend(request)


@pytest.fixture
def emu(kube_backend: Backend, request: pytest.FixtureRequest) -> KubeEmulator:
    """The emulator itself, for what only it can do; such tests are marked emulator_only."""
    if request.node.get_closest_marker(EMULATOR_ONLY) is None:
        pytest.fail(f"{request.node.name} uses the emulator's own API: mark it {EMULATOR_ONLY}")
    assert isinstance(kube_backend, EmulatorBackend)
    return kube_backend.emu


@pytest.fixture
def apis(kube_backend: Backend) -> KubeApis:
    return kube_backend.apis


@pytest.fixture
def ns(kube_backend: Backend) -> str:
    """This test's namespace: "shop" on the emulator, a fresh "shop-<hex>" on the real plane."""
    return kube_backend.namespace(NAMESPACE)


def create(apis: KubeApis, obj: dict[str, Any], namespace: str = NAMESPACE) -> None:
    """Create any object from its manifest, as ``kubectl create -f`` would."""
    utils.create_from_dict(apis.api_client, obj, namespace=namespace)


@pytest.fixture
def store() -> MemorySnapshotStore:
    return MemorySnapshotStore()


def make_service(name: str = "checkout", *, namespace: str = NAMESPACE, **extra: Any) -> Service:
    return Service(
        name=name,
        namespace=namespace,
        deployment=name,
        channel="C0ALERTS",
        match={"service": name},
        **extra,
    )


def deployment_body(
    name: str,
    image: str,
    *,
    replicas: int = 2,
    env: dict[str, str] | None = None,
    configmap: str | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    history_limit: int | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if configmap:
        container["envFrom"] = [{"configMapRef": {"name": configmap}}]
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
    }
    if history_limit is not None:
        spec["revisionHistoryLimit"] = history_limit
    meta: dict[str, Any] = {"name": name, "annotations": annotations or {}, "labels": labels or {}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


class Cluster:
    """Arranging cluster state the way people do: create, then roll out new versions."""

    def __init__(self, backend: Backend, ns: str) -> None:
        self.backend = backend
        self.apis = backend.apis
        self.ns = ns
        self.wait_seconds = WAIT if backend.name == "emulator" else REAL_WAIT

    def namespace(self, logical: str) -> str:
        """Another namespace for this test (see ``Backend.namespace``)."""
        return self.backend.namespace(logical)

    def deployment(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        namespace = namespace or self.ns
        obj = self.backend.get("deployments", namespace, name)
        assert obj is not None, f"deployment {namespace}/{name} missing"
        return obj

    def create(self, name: str, image: str, namespace: str | None = None, **kw: Any) -> None:
        namespace = namespace or self.ns
        self.apis.apps.create_namespaced_deployment(
            namespace,
            deployment_body(name, image, **kw),  # type: ignore[arg-type]
            _preload_content=False,
        )
        self.wait_revision(name, 1, namespace)

    def patch(self, name: str, patch: dict[str, Any], namespace: str | None = None) -> None:
        namespace = namespace or self.ns
        self.apis.apps.patch_namespaced_deployment(
            name,
            namespace,
            patch,
            _content_type="application/strategic-merge-patch+json",
            _preload_content=False,
        )

    def roll(self, name: str, image: str, *, revision: int, namespace: str | None = None) -> None:
        """A new image, and wait for the controller to number the new revision."""
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
        self.patch(name, patch, namespace)
        self.wait_revision(name, revision, namespace)

    def configmap(self, name: str, data: dict[str, str], namespace: str | None = None) -> None:
        namespace = namespace or self.ns
        body = {"metadata": {"name": name, "namespace": namespace}, "data": data}
        if self.backend.get("configmaps", namespace, name) is None:
            self.apis.core.create_namespaced_config_map(namespace, body)  # type: ignore[arg-type]
        else:
            self.apis.core.patch_namespaced_config_map(
                name,
                namespace,
                {"data": data},
                _content_type="application/merge-patch+json",
                _preload_content=False,
            )

    def revision(self, name: str, namespace: str | None = None) -> int | None:
        obj = self.backend.get("deployments", namespace or self.ns, name)
        if obj is None:
            return None
        raw = (obj["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision")
        return int(raw) if raw else None

    def wait_revision(self, name: str, revision: int, namespace: str | None = None) -> None:
        self.wait(lambda: self.revision(name, namespace) == revision)

    def quiet(self, namespace: str | None = None) -> None:
        """Wait until the controllers have nothing left to do in ``namespace``: every
        rollout complete, every ReplicaSet's status caught up with its spec. Only then does
        "nothing changed" mean the bot changed nothing (a real controller keeps writing
        status while a rollout settles)."""
        namespace = namespace or self.ns

        def settled() -> bool:
            for d in self.backend.list("deployments", namespace):
                if not rollout_status(d).ok:
                    return False
            for rs in self.backend.list("replicasets", namespace):
                status = rs.get("status") or {}
                if status.get("observedGeneration") != rs["metadata"].get("generation"):
                    return False
                want = int(rs["spec"].get("replicas") or 0)
                if int(status.get("replicas") or 0) != want:
                    return False
                for field in ("readyReplicas", "availableReplicas", "fullyLabeledReplicas"):
                    if int(status.get(field) or 0) != want:
                        return False
            return True

        self.wait(settled)
        # The controllers' last status writes trail those counts (conditions, the other
        # ReplicaSets): quiet means two reads a moment apart see the same versions.
        last: list[Any] = [self.backend.fingerprint(namespace)]

        def unchanged() -> bool:
            time.sleep(0.5)
            now = self.backend.fingerprint(namespace)
            same = now == last[0]
            last[0] = now
            return same

        self.wait(unchanged)

    def wait(self, predicate: Callable[[], bool]) -> None:
        """Poll ``predicate`` (it may call the API) until it holds."""
        self.backend.wait_for(predicate, timeout=self.wait_seconds)


def poll(predicate: Callable[[], bool], timeout: float = REAL_WAIT, interval: float = 0.05) -> None:
    """Wait for a predicate that talks to the API (so cannot run under the store's lock)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def cluster(kube_backend: Backend, ns: str) -> Cluster:
    return Cluster(kube_backend, ns)
