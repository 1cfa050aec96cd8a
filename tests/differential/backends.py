"""One interface over the two backends the differential suite compares.

A scenario gets a ``Backend`` and drives it as a user would: raw HTTP (to see status codes,
``Warning`` headers and watch streams), the official Python client, and the pinned kubectl.
The emulator backend is a fresh ``KubeEmulator``; the real backend is a fresh namespace on
the session's real control plane. Both know the same identities and tokens, so a scenario
never branches on which one it runs against, except to mark a release as crashing (the
emulator is told, the real cluster's kwok stages match the image name).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests
import yaml
from kubernetes import client

from sandbox.kube import KubeEmulator, Policy
from sandbox.realk8s import ADMIN, MALLORY, RealControlPlane

WAIT = 60.0

# The emulator gets the real control plane's tokens and, through its simple policy, the
# same answer for "mallory" (no rights) as RBAC gives.
EMULATOR_POLICY = Policy.from_tokens(
    {
        ADMIN.token: (ADMIN.user, ["*"]),
        MALLORY.token: (MALLORY.user, []),
    },
    anonymous=ADMIN.user,
)


class Backend:
    name: str
    url: str
    namespace: str
    kubectl_bin: Path

    # -- transports ---------------------------------------------------------------------

    def http(
        self, method: str, path: str, *, user: str = "admin", **kwargs: Any
    ) -> requests.Response:
        raise NotImplementedError

    def kubeconfig(self) -> Path:
        raise NotImplementedError

    def identity_args(self, user: str) -> list[str]:
        return [f"--context={user}"]

    def kubectl(
        self, *args: str, user: str = "admin", check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            str(self.kubectl_bin),
            f"--kubeconfig={self.kubeconfig()}",
            *self.identity_args(user),
            f"--namespace={self.namespace}",
            *args,
        ]
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, input=input, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"[{self.name}] kubectl {' '.join(args)} failed ({result.returncode}): "
                f"{result.stderr}{result.stdout}"
            )
        return result

    def api_client(self, user: str = "admin") -> client.ApiClient:
        raise NotImplementedError

    def apps(self, user: str = "admin") -> client.AppsV1Api:
        return client.AppsV1Api(self.api_client(user))

    def core(self, user: str = "admin") -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client(user))

    # -- fault marking ------------------------------------------------------------------

    def crash(self, image: str) -> None:
        """Make pods running ``image`` crash-loop (the image name must contain "crash")."""

    def expire_history(self, resource_version: str) -> None:
        """Make versions up to ``resource_version`` too old to watch from. On the emulator
        the writes that led there have pushed them out of its bounded history already."""

    # -- helpers ------------------------------------------------------------------------

    def get(self, path: str) -> dict[str, Any] | None:
        r = self.http("GET", path)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    def ns_path(self, group_version: str, resource: str, name: str = "") -> str:
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        tail = f"/{name}" if name else ""
        return f"{prefix}/namespaces/{self.namespace}/{resource}{tail}"

    def wait(self, what: str, predicate: Callable[[], Any], timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"[{self.name}] timed out waiting for {what}")
            time.sleep(0.1)

    def watch_lines(
        self, path: str, *, timeout: float = 10.0, **params: str
    ) -> Iterator[dict[str, Any]]:
        """Watch events (decoded) from a raw HTTP watch request, until the stream ends."""
        query = {"watch": "true", "timeoutSeconds": str(int(timeout)), **params}
        with self.http("GET", path, params=query, stream=True, timeout=timeout + 10) as r:
            yield {"_http": r.status_code}
            for line in r.iter_lines():
                if line:
                    yield json.loads(line)


def deployment_manifest(
    name: str,
    image: str,
    *,
    replicas: int = 2,
    strategy: dict[str, Any] | None = None,
    min_ready: int | None = None,
    progress_deadline: int = 600,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "progressDeadlineSeconds": progress_deadline,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image}]},
        },
    }
    if strategy is not None:
        spec["strategy"] = strategy
    if min_ready is not None:
        spec["minReadySeconds"] = min_ready
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": spec,
    }


class EmulatorBackend(Backend):
    name = "emulator"

    def __init__(self, kube: KubeEmulator, kubectl_bin: Path, work: Path, namespace: str):
        self.kube = kube
        self.url = kube.url
        self.kubectl_bin = kubectl_bin
        self.namespace = namespace
        self._work = work
        self._session = requests.Session()
        self._tokens = {ADMIN.user: ADMIN.token, MALLORY.user: MALLORY.token}
        r = self.http("POST", "/api/v1/namespaces", json=_namespace(namespace))
        assert r.status_code == 201, r.text

    def http(
        self, method: str, path: str, *, user: str = "admin", **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {self._tokens[user]}"
        kwargs.setdefault("timeout", 30)
        return self._session.request(method, self.url + path, headers=headers, **kwargs)

    def kubeconfig(self) -> Path:
        path = self._work / "emulator.kubeconfig"
        if not path.exists():
            config = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
                "users": [{"name": u, "user": {"token": t}} for u, t in self._tokens.items()],
                "contexts": [
                    {"name": u, "context": {"cluster": "emulator", "user": u}} for u in self._tokens
                ],
                "current-context": "admin",
            }
            path.write_text(yaml.safe_dump(config))
        return path

    def api_client(self, user: str = "admin") -> client.ApiClient:
        configuration = client.Configuration(host=self.url)
        configuration.api_key = {"authorization": self._tokens[user]}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)

    def crash(self, image: str) -> None:
        self.kube.crash_image(image)

    def identity_args(self, user: str) -> list[str]:
        # kubectl sends no bearer token over plain HTTP: it is the emulator's anonymous
        # admin, and other people are reached by impersonation.
        return ["--context=admin"] + ([f"--as={user}"] if user != "admin" else [])


class RealBackend(Backend):
    name = "real"

    def __init__(self, plane: RealControlPlane, namespace: str):
        self.plane = plane
        self.url = plane.url
        self.kubectl_bin = plane.binary("kubectl")
        self.namespace = namespace
        r = self.http("POST", "/api/v1/namespaces", json=_namespace(namespace))
        assert r.status_code == 201, r.text

    def http(
        self, method: str, path: str, *, user: str = "admin", **kwargs: Any
    ) -> requests.Response:
        return self.plane.request(method, path, user=user, **kwargs)

    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig_path

    def api_client(self, user: str = "admin") -> client.ApiClient:
        configuration = client.Configuration(host=self.url)
        configuration.api_key = {"authorization": self.plane.token(user)}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        configuration.ssl_ca_cert = str(self.plane.ca_path)
        return client.ApiClient(configuration)

    def expire_history(self, resource_version: str) -> None:
        # What the apiserver does every five minutes (--etcd-compaction-interval), now.
        etcd = f"http://127.0.0.1:{self.plane.ports['etcd']}"
        r = requests.post(
            f"{etcd}/v3/kv/compaction",
            json={"revision": resource_version, "physical": True},
            timeout=30,
        )
        r.raise_for_status()

    def cleanup(self) -> None:
        self.http("DELETE", f"/api/v1/namespaces/{self.namespace}")


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
