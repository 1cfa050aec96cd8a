"""The official `kubernetes` Python client, the admin API and the process life cycle."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from sandbox.kube import KubeEmulator

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def deployment(
    name: str = "api", image: str = "registry/api:1", replicas: int = 2
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": image}]},
            },
        },
    }


@pytest.fixture
def emulator() -> Iterator[KubeEmulator]:
    with KubeEmulator(ready_delay=0.05) as emu:
        yield emu


@pytest.fixture
def apps(emulator: KubeEmulator) -> Iterator[client.AppsV1Api]:
    api_client = emulator.api_client()
    yield client.AppsV1Api(api_client)
    api_client.close()


@pytest.fixture
def core(emulator: KubeEmulator) -> Iterator[client.CoreV1Api]:
    api_client = emulator.api_client()
    yield client.CoreV1Api(api_client)
    api_client.close()


def _ready(emulator: KubeEmulator, name: str, replicas: int) -> bool:
    d = emulator.get("deployments", "default", name) or {}
    status = d.get("status", {})
    return (
        status.get("observedGeneration") == d.get("metadata", {}).get("generation")
        and status.get("updatedReplicas") == replicas
        and status.get("availableReplicas") == replicas
        and status.get("replicas") == replicas
    )


def test_create_read_list_and_generation(apps: client.AppsV1Api, emulator: KubeEmulator) -> None:
    created = apps.create_namespaced_deployment("default", deployment())
    assert created.metadata.generation == 1 and created.metadata.resource_version
    apps.create_namespaced_deployment("default", deployment("other"))
    emulator.wait_for(lambda: _ready(emulator, "api", 2))
    read = apps.read_namespaced_deployment("api", "default")
    assert read.status.observed_generation == 1
    assert read.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    listed = apps.list_namespaced_deployment("default", label_selector="app in (api)")
    assert [d.metadata.name for d in listed.items] == ["api"]
    by_field = apps.list_namespaced_deployment("default", field_selector="metadata.name=other")
    assert [d.metadata.name for d in by_field.items] == ["other"]
    assert int(listed.metadata.resource_version) >= int(read.metadata.resource_version)
    patched = apps.patch_namespaced_deployment(
        "api", "default", {"spec": {"replicas": 3}}, _content_type=MERGE
    )
    assert patched.metadata.generation == 2
    labelled = apps.patch_namespaced_deployment(
        "api", "default", {"metadata": {"labels": {"team": "pay"}}}, _content_type=MERGE
    )
    assert labelled.metadata.generation == 2  # metadata changes do not bump generation


def test_replica_sets_and_pods_follow_the_template(
    apps: client.AppsV1Api, core: client.CoreV1Api, emulator: KubeEmulator
) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=3))
    emulator.wait_for(lambda: _ready(emulator, "api", 3))
    apps.patch_namespaced_deployment(
        "api",
        "default",
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "api", "image": "registry/api:2"}]}}
            }
        },
        _content_type=STRATEGIC,
    )
    emulator.wait_for(lambda: _ready(emulator, "api", 3))
    sets = apps.list_namespaced_replica_set("default", label_selector="app=api").items
    assert len(sets) == 2
    for rs in sets:
        pod_hash = rs.metadata.labels["pod-template-hash"]
        assert rs.metadata.name == f"api-{pod_hash}"
        assert rs.metadata.owner_references[0].kind == "Deployment"
        assert rs.metadata.owner_references[0].controller is True
    new = next(rs for rs in sets if rs.spec.template.spec.containers[0].image == "registry/api:2")
    old = next(rs for rs in sets if rs is not new)
    assert new.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert (new.spec.replicas, old.spec.replicas) == (3, 0)
    pods = core.list_namespaced_pod(
        "default", label_selector=f"pod-template-hash={new.metadata.labels['pod-template-hash']}"
    )
    assert len(pods.items) == 3
    assert all(p.status.phase == "Running" for p in pods.items)
    assert all(
        c.status == "True" for p in pods.items for c in p.status.conditions if c.type == "Ready"
    )


def test_history_is_trimmed_to_the_limit(apps: client.AppsV1Api, emulator: KubeEmulator) -> None:
    body = deployment(replicas=1)
    body["spec"]["revisionHistoryLimit"] = 1
    apps.create_namespaced_deployment("default", body)
    for tag in (2, 3, 4):
        emulator.wait_for(lambda: _ready(emulator, "api", 1))
        apps.patch_namespaced_deployment(
            "api",
            "default",
            [
                {
                    "op": "replace",
                    "path": "/spec/template/spec/containers/0/image",
                    "value": f"registry/api:{tag}",
                }
            ],
        )
    emulator.wait_for(lambda: _ready(emulator, "api", 1) and len(emulator.list("replicasets")) == 2)
    revisions = sorted(
        rs.metadata.annotations["deployment.kubernetes.io/revision"]
        for rs in apps.list_namespaced_replica_set("default").items
    )
    assert revisions == ["3", "4"]


def test_stale_replace_raises_409(apps: client.AppsV1Api) -> None:
    stale = apps.create_namespaced_deployment("default", deployment())
    apps.patch_namespaced_deployment(
        "api", "default", {"spec": {"replicas": 1}}, _content_type=MERGE
    )
    stale.spec.replicas = 5
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment("api", "default", stale)
    assert caught.value.status == 409
    status = json.loads(caught.value.body)
    assert (status["kind"], status["reason"]) == ("Status", "Conflict")


def _settled(apps: client.AppsV1Api, name: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        dep = apps.read_namespaced_deployment(name, "default")
        status = dep.status
        if (
            status is not None
            and status.observed_generation == dep.metadata.generation
            and (status.available_replicas or 0) == dep.spec.replicas
            and (status.replicas or 0) == dep.spec.replicas
        ):
            return dep
        if time.monotonic() > deadline:
            raise TimeoutError(f"deployment {name} did not settle")
        time.sleep(0.05)


@pytest.mark.parametrize("content_type", [MERGE, STRATEGIC])
def test_patch_with_stale_resource_version_is_a_conflict(
    apps: client.AppsV1Api, content_type: str
) -> None:
    created = apps.create_namespaced_deployment("default", deployment())
    rv = created.metadata.resource_version
    apps.patch_namespaced_deployment(
        "api", "default", {"spec": {"replicas": 1}}, _content_type=content_type
    )
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment(
            "api",
            "default",
            {"metadata": {"resourceVersion": rv}, "spec": {"replicas": 4}},
            _content_type=content_type,
        )
    assert caught.value.status == 409
    # The controller's own status writes bump resourceVersion, as on a real cluster;
    # read the version once it has nothing left to do.
    current = _settled(apps, "api")
    accepted = apps.patch_namespaced_deployment(
        "api",
        "default",
        [
            {
                "op": "replace",
                "path": "/metadata/resourceVersion",
                "value": current.metadata.resource_version,
            },
            {"op": "replace", "path": "/spec/replicas", "value": 4},
        ],
    )
    assert accepted.spec.replicas == 4


def test_errors_are_status_objects(apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("nope", "default")
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["message"] == 'deployments.apps "nope" not found'
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    with pytest.raises(ApiException) as invalid:
        apps.create_namespaced_deployment("default", bad)
    assert invalid.value.status == 422
    body = json.loads(invalid.value.body)
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "spec.template.spec.containers[0].image"
    apps.create_namespaced_deployment("default", deployment())
    with pytest.raises(ApiException) as exists:
        apps.create_namespaced_deployment("default", deployment())
    assert (exists.value.status, json.loads(exists.value.body)["reason"]) == (409, "AlreadyExists")
    with pytest.raises(ApiException) as no_ns:
        core.create_namespaced_config_map("ghost", {"metadata": {"name": "c"}, "data": {}})
    assert no_ns.value.status == 404


def test_dry_run_stores_nothing(apps: client.AppsV1Api, emulator: KubeEmulator) -> None:
    apps.create_namespaced_deployment("default", deployment())
    emulator.wait_for(lambda: _ready(emulator, "api", 2))
    before = emulator.dump()
    apps.patch_namespaced_deployment(
        "api", "default", {"spec": {"replicas": 9}}, dry_run="All", _content_type=MERGE
    )
    apps.create_namespaced_deployment("default", deployment("shadow"), dry_run="All")
    apps.delete_namespaced_deployment("api", "default", dry_run="All")
    assert emulator.dump() == before
    assert [e["dryRun"] for e in emulator.audit[-3:]] == [True, True, True]


def test_scale_subresource(apps: client.AppsV1Api, emulator: KubeEmulator) -> None:
    apps.create_namespaced_deployment("default", deployment())
    scale = apps.read_namespaced_deployment_scale("api", "default")
    assert (scale.spec.replicas, scale.status.selector) == (2, "app=api")
    apps.patch_namespaced_deployment_scale(
        "api", "default", {"spec": {"replicas": 4}}, _content_type=MERGE
    )
    emulator.wait_for(lambda: _ready(emulator, "api", 4))
    assert apps.read_namespaced_deployment("api", "default").spec.replicas == 4


def test_injected_faults_hit_the_next_writes(
    apps: client.AppsV1Api, emulator: KubeEmulator
) -> None:
    apps.create_namespaced_deployment("default", deployment())
    emulator.inject_faults(
        resource="deployments", namespace="default", name="api", conflicts=1, errors=1, status=503
    )
    patch = {"spec": {"replicas": 3}}
    with pytest.raises(ApiException) as first:
        apps.patch_namespaced_deployment("api", "default", patch, _content_type=MERGE)
    with pytest.raises(ApiException) as second:
        apps.patch_namespaced_deployment("api", "default", patch, _content_type=MERGE)
    assert (first.value.status, second.value.status) == (409, 503)
    assert (
        apps.patch_namespaced_deployment("api", "default", patch, _content_type=MERGE).spec.replicas
        == 3
    )


def test_crash_and_heal_image(
    apps: client.AppsV1Api, core: client.CoreV1Api, emulator: KubeEmulator
) -> None:
    emulator.crash_image("registry/api:bad")
    apps.create_namespaced_deployment("default", deployment(image="registry/api:bad"))
    emulator.wait_for(
        lambda: any(
            (c.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"
            for p in emulator.list("pods")
            for c in p["status"].get("containerStatuses") or []
        )
    )
    assert not (emulator.get("deployments", "default", "api") or {})["status"].get("readyReplicas")
    emulator.heal_image("registry/api:bad")
    emulator.wait_for(lambda: _ready(emulator, "api", 2))
    available = apps.read_namespaced_deployment("api", "default").status.conditions
    assert any(c.type == "Available" and c.status == "True" for c in available)


def test_services_configmaps_ingresses(core: client.CoreV1Api, emulator: KubeEmulator) -> None:
    svc = core.create_namespaced_service(
        "default",
        {
            "metadata": {"name": "shop"},
            "spec": {"selector": {"slot": "blue"}, "ports": [{"port": 80}]},
        },
    )
    assert svc.spec.type == "ClusterIP" and svc.spec.ports[0].target_port == 80
    core.patch_namespaced_service(
        "shop", "default", {"spec": {"selector": {"slot": "green"}}}, _content_type=MERGE
    )
    assert core.read_namespaced_service("shop", "default").spec.selector == {"slot": "green"}
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "flags"}, "data": {"new-ui": "on"}}
    )
    core.patch_namespaced_config_map(
        "flags", "default", {"data": {"new-ui": "off"}}, _content_type=MERGE
    )
    assert core.read_namespaced_config_map("flags", "default").data == {"new-ui": "off"}
    net = client.NetworkingV1Api(core.api_client)
    ingress = {
        "metadata": {
            "name": "shop-canary",
            "annotations": {"nginx.ingress.kubernetes.io/canary-weight": "50"},
        },
        "spec": {
            "rules": [
                {
                    "host": "shop.example",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "shop", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }
    net.create_namespaced_ingress("default", ingress)
    net.patch_namespaced_ingress(
        "shop-canary",
        "default",
        {"metadata": {"annotations": {"nginx.ingress.kubernetes.io/canary-weight": "5"}}},
        _content_type=MERGE,
    )
    stored = emulator.get("ingresses", "default", "shop-canary") or {}
    assert stored["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "5"


def test_watch_streams_events_and_ends_at_its_timeout(
    apps: client.AppsV1Api, emulator: KubeEmulator
) -> None:
    apps.create_namespaced_deployment("default", deployment())
    listed = apps.list_namespaced_deployment("default")
    seen: list[tuple[str, int]] = []

    def change() -> None:
        apps.patch_namespaced_deployment(
            "api", "default", {"spec": {"replicas": 1}}, _content_type=MERGE
        )

    timer = threading.Timer(0.2, change)
    timer.start()
    stream = watch.Watch().stream(
        apps.list_namespaced_deployment,
        "default",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=2,
    )
    for event in stream:
        seen.append((event["type"], event["object"].spec.replicas))
    timer.join()
    assert ("MODIFIED", 1) in seen
    assert all(kind == "MODIFIED" for kind, _ in seen)


def _raw(url: str, method: str = "GET", body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def test_send_initial_events_ends_with_the_bookmark(
    apps: client.AppsV1Api, emulator: KubeEmulator
) -> None:
    apps.create_namespaced_deployment("default", deployment())
    url = (
        f"{emulator.url}/apis/apps/v1/namespaces/default/deployments?watch=true"
        "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1"
    )
    events = [json.loads(line) for line in _raw(url).splitlines()]
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "api"
    bookmark = next(e for e in events if e["type"] == "BOOKMARK")
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_admin_http_api(emulator: KubeEmulator, apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    base = f"{emulator.url}/_sandbox"
    _raw(f"{base}/crash-image", "POST", {"image": "registry/api:9"})
    assert "registry/api:9" in emulator.faults.crashing
    _raw(f"{base}/heal-image", "POST", {"image": "registry/api:9"})
    assert "registry/api:9" not in emulator.faults.crashing
    _raw(
        f"{base}/faults",
        "POST",
        {"resource": "deployments", "namespace": "default", "name": "api", "errors": 1},
    )
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment(
            "api", "default", {"spec": {"replicas": 1}}, _content_type=MERGE
        )
    assert caught.value.status == 500
    _raw(f"{base}/latency", "POST", {"seconds": 0.01})
    assert emulator.faults.latency == 0.01
    emulator.wait_for(lambda: _ready(emulator, "api", 2))
    audit = json.loads(_raw(f"{base}/audit"))
    assert audit[0]["verb"] == "create" and audit[0]["name"] == "api"
    assert json.loads(_raw(f"{base}/dump")) == json.loads(emulator.dump())


def test_impersonation_headers_are_recorded(emulator: KubeEmulator) -> None:
    api_client = emulator.api_client(user="bob", groups=["sre"])
    try:
        client.CoreV1Api(api_client).create_namespaced_config_map(
            "default", {"metadata": {"name": "c"}}
        )
    finally:
        api_client.close()
    assert {k: emulator.audit[-1][k] for k in ("verb", "resource", "user", "groups")} == {
        "verb": "create",
        "resource": "configmaps",
        "user": "bob",
        "groups": ["sre"],
    }


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_stop_leaves_no_threads_or_ports() -> None:
    before = set(threading.enumerate())
    emulator = KubeEmulator(ready_delay=0.01).start()
    port = emulator.port
    api_client = emulator.api_client()
    client.AppsV1Api(api_client).create_namespaced_deployment("default", deployment())
    emulator.wait_for(lambda: _ready(emulator, "api", 2))
    streaming = threading.Event()
    lines: list[bytes] = []

    def watch_until_stopped() -> None:
        url = f"{emulator.url}/apis/apps/v1/deployments?watch=true&timeoutSeconds=60"
        with urllib.request.urlopen(url, timeout=10) as response:
            lines.append(response.readline())
            streaming.set()
            lines.extend(response.read().splitlines())

    watcher = threading.Thread(target=watch_until_stopped)
    watcher.start()
    assert streaming.wait(timeout=10)
    emulator.stop()
    watcher.join(timeout=10)
    api_client.close()
    assert not watcher.is_alive()
    assert json.loads(lines[0])["type"] == "ADDED"  # the stream ended cleanly, not reset
    assert not _port_open(port)
    assert set(threading.enumerate()) - before == set()


def test_module_entry_point_and_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    kubeconfig = tmp_path / "kubeconfig"
    cmd = [
        sys.executable,
        "-m",
        "sandbox.kube",
        "--port",
        "0",
        "--kubeconfig-out",
        str(kubeconfig),
        "--state",
        str(state),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("LISTENING ")
        port = int(line.split()[1])
        assert f"http://127.0.0.1:{port}" in kubeconfig.read_text()
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kept"},
            "data": {"a": "1"},
        }
        _raw(f"http://127.0.0.1:{port}/api/v1/namespaces/default/configmaps", "POST", body)
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    with KubeEmulator(state_file=str(state)) as restored:
        assert (restored.get("configmaps", "default", "kept") or {})["data"] == {"a": "1"}
