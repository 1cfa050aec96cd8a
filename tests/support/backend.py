"""Where the executor tests run: the emulator in ``sandbox/kube`` or the real control plane.

A test asks for ``kube_backend`` (parametrised ``emulator`` | ``real``, the id is in the
test's name) and talks to Kubernetes only through the :class:`Backend` protocol: objects are
read through the API, waits poll, a crashing release is made the way each backend knows
(the emulator's ``crash_image``; on the real plane an image containing ``crash``, which the
kwok stages keep un-Ready), writes are read back from the audit trail in one normalised shape,
and "nothing changed" compares what each backend can say exactly (the emulator's byte-level
dump; the real plane's resourceVersion and generation of every object the bot touches).

On the real plane every test gets fresh namespaces (``namespace("shop")`` answers
``shop-<hex>``) on the one session-scoped control plane, deleted when the test ends, so tests
cannot see each other's objects. On the emulator the logical name is the namespace (each test
has its own emulator).

Tests that need what only the emulator has (fault injection, latency, the byte-identical
dump of every object) carry ``@pytest.mark.emulator_only`` and run on the emulator alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from rollback_bot.kube.client import KubeApis
from sandbox.kube import KubeEmulator
from sandbox.realk8s import RealControlPlane
from sandbox.realk8s.control_plane import CONTROLLER_MANAGER, KWOK, SCHEDULER

EMULATOR = "emulator"
REAL = "real"
BACKENDS = (EMULATOR, REAL)
EMULATOR_ONLY = "emulator_only"
DATABASE_FIXTURES = frozenset({"database_url", "migrated_url", "engine", "uow"})
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
COMPONENT_USERS = frozenset(c.user for c in (CONTROLLER_MANAGER, SCHEDULER, KWOK))
# What the bot writes (and the controllers it drives write from): "nothing changed" on the
# real plane compares these objects' resourceVersion and generation.
TOUCHED = ("deployments", "replicasets", "services", "configmaps", "ingresses")

_PATHS = {
    "namespaces": "/api/v1",
    "pods": "/api/v1",
    "services": "/api/v1",
    "configmaps": "/api/v1",
    "events": "/api/v1",
    "deployments": "/apis/apps/v1",
    "replicasets": "/apis/apps/v1",
    "ingresses": "/apis/networking.k8s.io/v1",
}


def resource_path(resource: str, namespace: str, name: str | None = None) -> str:
    base = _PATHS[resource]
    path = f"{base}/namespaces/{namespace}/{resource}" if namespace else f"{base}/{resource}"
    return f"{path}/{name}" if name else path


class Backend(Protocol):
    name: str
    apis: KubeApis  # an administrator's: arranging the cluster, never the bot's own rights

    def namespace(self, logical: str) -> str:
        """A namespace for this test (created): ``logical`` itself, or ``logical-<hex>``."""
        ...

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    def list(self, resource: str, namespace: str) -> list[dict[str, Any]]: ...

    def wait_for(self, predicate: Callable[[], bool], timeout: float = ...) -> None:
        """Poll ``predicate`` (it may call the API) until it holds."""
        ...

    def crashing(self, image: str) -> str:
        """An image whose pods never become Ready (derived from ``image``)."""
        ...

    def writes(self, namespace: str) -> list[dict[str, Any]]:
        """Writes in ``namespace`` by anyone but the controllers, oldest first: verb,
        resource, subresource, name, user (the impersonated one if any), groups, dryRun."""
        ...

    def fingerprint(self, namespace: str) -> Any:
        """Equal before and after iff nothing the bot touches changed."""
        ...

    def kubectl(self, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """kubectl as the administrator (on the real plane the pinned one)."""
        ...

    def grant(self, namespace: str, user: str, rules: list[dict[str, Any]]) -> None:
        """Let ``user`` do ``rules`` (RBAC PolicyRules) in ``namespace``; the emulator has no
        authorization, so there it is a no-op."""
        ...

    def close(self) -> None: ...


def poll(predicate: Callable[[], bool], timeout: float, interval: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


def _get_json(api_client: k8s.ApiClient, path: str) -> dict[str, Any] | None:
    """GET ``path`` with the client's own credentials; None for 404."""
    method, url, headers, body, post = api_client.param_serialize(
        "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
    )
    response = api_client.call_api(method, url, headers, body, post)
    response.read()
    if response.status == 404:
        return None
    if response.status != 200:
        raise k8s.ApiException(http_resp=response)
    data = json.loads(response.data)
    assert isinstance(data, dict)
    return data


class EmulatorBackend:
    name = EMULATOR

    def __init__(self) -> None:
        self.emu = KubeEmulator(ready_delay=0.05).start()
        self._client = self.emu.api_client()
        self.apis = KubeApis(self._client)

    def namespace(self, logical: str) -> str:
        if self.get("namespaces", "", logical) is None:
            self.apis.core.create_namespace({"metadata": {"name": logical}})  # type: ignore[arg-type]
        return logical

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        return _get_json(self._client, resource_path(resource, namespace, name))

    def list(self, resource: str, namespace: str) -> list[dict[str, Any]]:
        found = _get_json(self._client, resource_path(resource, namespace)) or {}
        return list(found.get("items") or [])

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        poll(predicate, timeout, 0.02)

    def crashing(self, image: str) -> str:
        self.emu.crash_image(image)
        return image

    def writes(self, namespace: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.emu.audit
            if e["verb"] in WRITE_VERBS and e.get("namespace", "") == namespace
        ]

    def fingerprint(self, namespace: str) -> Any:
        return self.emu.dump()

    def kubectl(self, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        config = self.emu.write_kubeconfig(tmp_path / "kc")
        return subprocess.run(
            ["kubectl", "--kubeconfig", config, "--cache-dir", str(tmp_path / "cache"), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def grant(self, namespace: str, user: str, rules: list[dict[str, Any]]) -> None:
        return None

    def close(self) -> None:
        self._client.close()
        self.emu.stop()


def client_for(plane: RealControlPlane, user: str) -> k8s.ApiClient:
    """An ``ApiClient`` authenticated as one of the plane's token users."""
    return k8s_config.new_client_from_config(config_file=str(plane.kubeconfig_path), context=user)


class RealBackend:
    name = REAL

    def __init__(self, plane: RealControlPlane) -> None:
        self.plane = plane
        self._client = client_for(plane, "admin")
        self.apis = KubeApis(self._client)
        self.created: list[str] = []

    def namespace(self, logical: str) -> str:
        name = f"{logical}-{uuid.uuid4().hex[:8]}"
        self.apis.core.create_namespace({"metadata": {"name": name}})  # type: ignore[arg-type]
        self.created.append(name)
        return name

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        return _get_json(self._client, resource_path(resource, namespace, name))

    def list(self, resource: str, namespace: str) -> list[dict[str, Any]]:
        found = _get_json(self._client, resource_path(resource, namespace)) or {}
        return list(found.get("items") or [])

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
        poll(predicate, timeout, 0.1)

    def crashing(self, image: str) -> str:
        return image if "crash" in image else f"{image}-crash"

    def writes(self, namespace: str) -> list[dict[str, Any]]:
        found = []
        for event in self.plane.audit_events():
            ref = event.get("objectRef") or {}
            user = event.get("user") or {}
            if (
                event.get("verb") not in WRITE_VERBS
                or ref.get("namespace") != namespace
                or user.get("username") in COMPONENT_USERS
            ):
                continue
            acting = event.get("impersonatedUser") or user
            found.append(
                {
                    "verb": event["verb"],
                    "resource": ref.get("resource"),
                    "subresource": ref.get("subresource"),
                    "namespace": namespace,
                    "name": ref.get("name", ""),
                    "user": acting.get("username"),
                    "groups": list(acting.get("groups") or []),
                    "dryRun": "dryRun=All" in event.get("requestURI", ""),
                    "code": (event.get("responseStatus") or {}).get("code"),
                }
            )
        return found

    def fingerprint(self, namespace: str) -> Any:
        seen = {}
        for resource in TOUCHED:
            for obj in self.list(resource, namespace):
                meta = obj["metadata"]
                seen[(resource, meta["name"])] = (meta["resourceVersion"], meta.get("generation"))
        return seen

    def kubectl(self, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return self.plane.kubectl(*args, check=False)

    def grant(self, namespace: str, user: str, rules: list[dict[str, Any]]) -> None:
        name = f"test-{uuid.uuid4().hex[:8]}"
        rbac = k8s.RbacAuthorizationV1Api(self._client)
        rbac.create_namespaced_role(
            namespace,
            {"metadata": {"name": name}, "rules": rules},  # type: ignore[arg-type]
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {  # type: ignore[arg-type]
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            },
        )

    def close(self) -> None:
        for name in self.created:  # the namespace controller deletes the rest; no wait
            try:
                self.apis.core.delete_namespace(name)
            except k8s.ApiException as exc:
                if exc.status != 404:
                    raise
        self._client.close()


class Scoped:
    """One test's view: a backend and its namespace, with the emulator-shaped calls the
    suites were written against (``get``, ``audit``, ``dump``) answered by either backend."""

    def __init__(self, backend: Backend, ns: str) -> None:
        self.backend = backend
        self.ns = ns
        self.wait = 30.0 if backend.name == EMULATOR else 90.0

    def get(self, resource: str, name: str) -> dict[str, Any] | None:
        return self.backend.get(resource, self.ns, name)

    @property
    def audit(self) -> list[dict[str, Any]]:
        return self.backend.writes(self.ns)

    def dump(self) -> Any:
        return self.backend.fingerprint(self.ns)

    def wait_for(self, predicate: Callable[[], bool]) -> None:
        self.backend.wait_for(predicate, timeout=self.wait)

    @property
    def emu(self) -> KubeEmulator:
        """For emulator_only tests."""
        assert isinstance(self.backend, EmulatorBackend), "mark the test emulator_only"
        return self.backend.emu

    def inject_faults(self, **kw: Any) -> None:
        self.emu.inject_faults(**{**kw, "namespace": self.ns})


def backend_params(metafunc: pytest.Metafunc) -> None:
    """``pytest_generate_tests`` for packages using ``kube_backend``.

    Emulator-only tests get the emulator alone. The real plane's tests run once per CI pass:
    in the PostgreSQL run (``ROLLBACK_BOT_TEST_DATABASE_URL`` set) they are left out unless the
    test uses a database, since they would only repeat the SQLite run.
    """
    if "kube_backend" not in metafunc.fixturenames:
        return
    emulator_only = metafunc.definition.get_closest_marker(EMULATOR_ONLY) is not None
    repeat_run = bool(os.environ.get("ROLLBACK_BOT_TEST_DATABASE_URL")) and not (
        DATABASE_FIXTURES & set(metafunc.fixturenames)
    )
    params = [EMULATOR] if emulator_only or repeat_run else list(BACKENDS)
    metafunc.parametrize("kube_backend", params, indirect=True, ids=params)


def open_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The body of the ``kube_backend`` fixture."""
    backend: Backend
    if request.param == REAL:
        backend = RealBackend(request.getfixturevalue("real_control_plane"))
    else:
        backend = EmulatorBackend()
    try:
        yield backend
    finally:
        backend.close()
