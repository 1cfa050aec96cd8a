"""Fixtures for executor tests: a loopback cluster, API bundles and an in-memory checkpoint store.

Every test gets its own emulator (it starts in milliseconds), so tests cannot
see each other's objects and ``emu.dump()`` comparisons are exact.
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
from sandbox.kube import KubeEmulator

NAMESPACE = "shop"
WAIT = 20.0  # generous: a loaded 2-core machine must not make these flaky


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
def emu() -> Iterator[KubeEmulator]:
    emulator = KubeEmulator(ready_delay=0.05).start()
    try:
        emulator.api_client()  # fail early if the emulator cannot hand out clients
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def apis(emu: KubeEmulator) -> Iterator[KubeApis]:
    client = emu.api_client()
    yield KubeApis(client)
    client.close()


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

    def __init__(self, emu: KubeEmulator, apis: KubeApis) -> None:
        self.emu = emu
        self.apis = apis
        self.ensure_namespace(NAMESPACE)

    def ensure_namespace(self, name: str) -> None:
        if self.emu.get("namespaces", "", name) is None:
            self.apis.core.create_namespace({"metadata": {"name": name}})  # type: ignore[arg-type]

    def deployment(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        obj = self.emu.get("deployments", namespace, name)
        assert obj is not None, f"deployment {namespace}/{name} missing"
        return obj

    def create(self, name: str, image: str, namespace: str = NAMESPACE, **kw: Any) -> None:
        self.apis.apps.create_namespaced_deployment(
            namespace,
            deployment_body(name, image, **kw),  # type: ignore[arg-type]
            _preload_content=False,
        )
        self.wait_revision(name, 1, namespace)

    def patch(self, name: str, patch: dict[str, Any], namespace: str = NAMESPACE) -> None:
        self.apis.apps.patch_namespaced_deployment(
            name,
            namespace,
            patch,
            _content_type="application/strategic-merge-patch+json",
            _preload_content=False,
        )

    def roll(self, name: str, image: str, *, revision: int, namespace: str = NAMESPACE) -> None:
        """A new image, and wait for the controller to number the new revision."""
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
        self.patch(name, patch, namespace)
        self.wait_revision(name, revision, namespace)

    def configmap(self, name: str, data: dict[str, str], namespace: str = NAMESPACE) -> None:
        body = {"metadata": {"name": name, "namespace": namespace}, "data": data}
        if self.emu.get("configmaps", namespace, name) is None:
            self.apis.core.create_namespaced_config_map(namespace, body)  # type: ignore[arg-type]
        else:
            self.apis.core.patch_namespaced_config_map(
                name,
                namespace,
                {"data": data},
                _content_type="application/merge-patch+json",
                _preload_content=False,
            )

    def revision(self, name: str, namespace: str = NAMESPACE) -> int | None:
        obj = self.emu.get("deployments", namespace, name)
        if obj is None:
            return None
        raw = (obj["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision")
        return int(raw) if raw else None

    def wait_revision(self, name: str, revision: int, namespace: str = NAMESPACE) -> None:
        self.emu.wait_for(lambda: self.revision(name, namespace) == revision, timeout=WAIT)

    def wait(self, predicate: Callable[[], bool]) -> None:
        """Wait on the emulator's own state (the predicate must not call the API)."""
        self.emu.wait_for(predicate, timeout=WAIT)


def poll(predicate: Callable[[], bool], timeout: float = WAIT, interval: float = 0.05) -> None:
    """Wait for a predicate that talks to the API (so cannot run under the store's lock)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def cluster(emu: KubeEmulator, apis: KubeApis) -> Cluster:
    return Cluster(emu, apis)
