"""The scenarios: each drives one backend as a user or the bot would and returns a
normalised result; the test compares the emulator's result with the real control plane's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException

from . import normalise as n
from .backends import Backend, deployment_manifest

Scenario = Callable[[Backend], dict[str, Any]]
SCENARIOS: dict[str, Scenario] = {}

SMP = {"Content-Type": "application/strategic-merge-patch+json"}
MERGE = {"Content-Type": "application/merge-patch+json"}
IMAGE = "registry.example/web"


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


# -- helpers ----------------------------------------------------------------------------


def deploy_path(b: Backend, name: str = "web") -> str:
    return b.ns_path("apps/v1", "deployments", name)


def complete(b: Backend, name: str = "web") -> dict[str, Any]:
    """Wait until the Deployment's rollout is complete; return the Deployment."""

    def check() -> dict[str, Any] | None:
        d = b.get(deploy_path(b, name))
        if d is None:
            return None
        s, want = d.get("status") or {}, d["spec"]["replicas"]
        done = (
            s.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and s.get("updatedReplicas", 0) == want
            and s.get("replicas", 0) == want
            and s.get("availableReplicas", 0) == want
        )
        return d if done else None

    result: dict[str, Any] = b.wait(f"deployment {name} complete", check)
    return result


def create(b: Backend, manifest: dict[str, Any]) -> None:
    r = b.http("POST", b.ns_path("apps/v1", "deployments"), json=manifest)
    assert r.status_code == 201, r.text


def rs_specs(b: Backend, name: str = "web") -> list[tuple[str, int]]:
    return [(n.image_of(rs), rs["spec"]["replicas"]) for rs in n.replicasets(b, name)]


# -- scenarios --------------------------------------------------------------------------


@scenario
def create_apply(b: Backend) -> dict[str, Any]:
    """kubectl apply (create, configure, unchanged) and rollout status."""
    manifest = deployment_manifest("web", f"{IMAGE}:1")
    out = {"apply1": b.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest)).stdout}
    status = b.kubectl("rollout", "status", "deploy/web", "--timeout=60s")
    out["rollout_status_last_line"] = status.stdout.strip().splitlines()[-1]
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = f"{IMAGE}:2"
    out["apply2"] = b.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest)).stdout
    complete(b)
    out["apply3"] = b.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest)).stdout
    names = n.rs_names(b, "web")
    d = complete(b)
    return {
        "kubectl": {k: n.text(v, b, names) for k, v in out.items()},
        "revision": d["metadata"]["annotations"].get(n.REVISION),
        "generation": d["metadata"]["generation"],
        "conditions": n.conditions(d),
        "replicasets": n.rs_summary(b, "web"),
    }


@scenario
def replicaset_names(b: Backend) -> dict[str, Any]:
    """The pod-template-hash of one fixed template (the ReplicaSet's name)."""
    create(b, deployment_manifest("web", f"{IMAGE}:1", replicas=1))
    complete(b)
    return {"names": sorted(rs["metadata"]["name"] for rs in n.replicasets(b, "web"))}


@scenario
def set_image_history_undo(b: Backend) -> dict[str, Any]:
    """set image twice, rollout history, undo, undo --to-revision."""
    b.apps().create_namespaced_deployment(b.namespace, deployment_manifest("web", f"{IMAGE}:1"))
    complete(b)
    out: dict[str, Any] = {}
    for tag in ("2", "3"):
        out[f"set{tag}"] = b.kubectl("set", "image", "deploy/web", f"app={IMAGE}:{tag}").stdout
        complete(b)
    out["history"] = b.kubectl("rollout", "history", "deploy/web").stdout
    out["history_rev2"] = b.kubectl("rollout", "history", "deploy/web", "--revision=2").stdout
    out["undo"] = b.kubectl("rollout", "undo", "deploy/web").stdout
    after_undo = n.image_of(complete(b))
    out["undo_to_1"] = b.kubectl("rollout", "undo", "deploy/web", "--to-revision=1").stdout
    d = complete(b)
    out["history_after"] = b.kubectl("rollout", "history", "deploy/web").stdout
    names = n.rs_names(b, "web")
    return {
        "kubectl": {k: n.text(v, b, names) for k, v in out.items()},
        "image_after_undo": after_undo,
        "image_after_undo_to_1": n.image_of(d),
        "revision": d["metadata"]["annotations"].get(n.REVISION),
        "replicasets": n.rs_summary(b, "web"),
        "conditions": n.conditions(d),
    }


@scenario
def scale_stalled_rollout(b: Backend) -> dict[str, Any]:
    """Scale 4 → 8 while a crashing release is stalled: proportional scaling."""
    create(b, deployment_manifest("web", f"{IMAGE}:1", replicas=4))
    complete(b)
    bad = f"{IMAGE}:2-crash"
    b.crash(bad)
    b.kubectl("set", "image", "deploy/web", f"app={bad}")
    stalled = [(f"{IMAGE}:1", 3), (bad, 2)]
    b.wait("the rollout to stall", lambda: rs_specs(b) == stalled)
    b.kubectl("scale", "deploy/web", "--replicas=8")

    def settled() -> bool:
        d = b.get(deploy_path(b)) or {}
        rses = n.replicasets(b, "web")
        return (d.get("status") or {}).get("observedGeneration") == d["metadata"][
            "generation"
        ] and all(
            rs["metadata"]["annotations"].get("deployment.kubernetes.io/desired-replicas") == "8"
            for rs in rses
            if rs["spec"]["replicas"]
        )

    b.wait("the scale to be observed", settled)

    # Status counts follow the ReplicaSets' pods; wait until they have caught up.
    def caught_up() -> bool:
        rses = n.replicasets(b, "web")
        s = (b.get(deploy_path(b)) or {}).get("status") or {}
        healthy = [rs for rs in rses if bad not in n.image_of(rs)]
        return (
            all(rs["status"].get("replicas") == rs["spec"]["replicas"] for rs in rses)
            and s.get("replicas") == sum(rs["spec"]["replicas"] for rs in rses)
            and s.get("availableReplicas", 0) == sum(rs["spec"]["replicas"] for rs in healthy)
        )

    b.wait("status to catch up", caught_up)
    d = b.get(deploy_path(b)) or {}
    status = d.get("status") or {}
    return {
        "stalled": stalled,
        "after_scale": rs_specs(b),
        "status": {
            k: status.get(k)
            for k in (
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
            )
        },
        "conditions": n.conditions(d),
    }


@scenario
def recreate_crashing(b: Backend) -> dict[str, Any]:
    """Recreate with a crashing release: old pods go first, Available=False."""
    create(b, deployment_manifest("web", f"{IMAGE}:1", strategy={"type": "Recreate"}))
    complete(b)
    bad = f"{IMAGE}:2-crash"
    b.crash(bad)
    b.kubectl("set", "image", "deploy/web", f"app={bad}")

    def crashed() -> dict[str, Any] | None:
        d = b.get(deploy_path(b)) or {}
        s = d.get("status") or {}
        observed = s.get("observedGeneration", 0) >= d["metadata"]["generation"]
        new = [rs for rs in n.replicasets(b, "web") if n.image_of(rs) == bad]
        pods = bool(new) and new[0]["status"].get("replicas") == 2
        if observed and pods and s.get("updatedReplicas") == 2 and s.get("replicas") == 2:
            return d
        return None

    d = b.wait("the new pods", crashed)
    d = b.get(deploy_path(b)) or d
    status = d.get("status") or {}
    return {
        "replicasets": rs_specs(b),
        "status": {
            k: status.get(k)
            for k in ("replicas", "updatedReplicas", "availableReplicas", "unavailableReplicas")
        },
        "conditions": n.conditions(d),
    }


@scenario
def min_ready_seconds(b: Backend) -> dict[str, Any]:
    """Ready pods count as available only minReadySeconds after they became ready."""
    create(b, deployment_manifest("web", f"{IMAGE}:1", min_ready=5))

    def ready() -> dict[str, Any] | None:
        d = b.get(deploy_path(b)) or {}
        return d if (d.get("status") or {}).get("readyReplicas") == 2 else None

    first = b.wait("ready pods", ready)
    d = complete(b)
    rs = n.replicasets(b, "web")[0]
    return {
        "available_when_first_ready": (first.get("status") or {}).get("availableReplicas", 0),
        "conditions_when_first_ready": n.conditions(first),
        "available_at_end": d["status"].get("availableReplicas"),
        "rs_min_ready_seconds": rs["spec"].get("minReadySeconds"),
    }


@scenario
def unknown_fields(b: Backend) -> dict[str, Any]:
    """Unknown fields: dropped with a Warning by default, 400 under fieldValidation=Strict."""
    create(b, deployment_manifest("web", f"{IMAGE}:1"))
    complete(b)
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "app", "imagePullPolicyy": "Always"}]}}
        }
    }
    out: dict[str, Any] = {}
    for mode in ("", "Ignore", "Warn", "Strict"):
        params = {"fieldValidation": mode} if mode else {}
        r = b.http("PATCH", deploy_path(b), headers=SMP, params=params, data=json.dumps(patch))
        body = r.json()
        out[mode or "default"] = {
            **n.status(r),
            "warning": r.headers.get("Warning"),
            "message": _strict_message(body),
            "generation": (body.get("metadata") or {}).get("generation"),
            "stored": "imagePullPolicyy" in json.dumps(body),
        }
    merge = {"spec": {"bogusField": 1}, "metadata": {"labels": {"x": "y"}}}
    r = b.http("PATCH", deploy_path(b), headers=MERGE, data=json.dumps(merge))
    out["merge_patch_bogus"] = {**n.status(r), "warning": r.headers.get("Warning")}
    r = b.http(
        "PATCH",
        deploy_path(b),
        headers=MERGE,
        params={"fieldValidation": "Strict"},
        data=json.dumps(merge),
    )
    out["merge_patch_bogus_strict"] = {**n.status(r), "message": _strict_message(r.json())}
    kubectl = b.kubectl("patch", "deploy/web", "-p", json.dumps(patch), check=False)
    out["kubectl_patch"] = {
        "rc": kubectl.returncode,
        "stderr": n.text(kubectl.stderr, b),
    }
    bad = deployment_manifest("other", f"{IMAGE}:1")
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    applied = b.kubectl("apply", "-f", "-", input=yaml.safe_dump(bad), check=False)
    out["kubectl_apply_unknown"] = {"rc": applied.returncode, "stderr": n.text(applied.stderr, b)}
    d = b.get(deploy_path(b)) or {}
    out["final_generation"] = d["metadata"]["generation"]
    return out


def _strict_message(body: dict[str, Any]) -> str | None:
    """The parts of a strict-decoding refusal that do not echo the whole object back."""
    if body.get("kind") != "Status":
        return None
    message = str(body.get("message", ""))
    head, _, _ = message.partition("Invalid value:")
    _, _, tail = message.partition("strict decoding error:")
    return f"{head}...{tail}"


@scenario
def invalid_values(b: Backend) -> dict[str, Any]:
    """Invalid values answer 422 Invalid naming the field."""
    create(b, deployment_manifest("web", f"{IMAGE}:1"))
    out: dict[str, Any] = {}
    cases = {
        "negative_replicas": {"spec": {"replicas": -1}},
        "bad_strategy": {"spec": {"strategy": {"type": "Bogus", "rollingUpdate": None}}},
        "bad_restart_policy": {"spec": {"template": {"spec": {"restartPolicy": "Never"}}}},
    }
    for key, patch in cases.items():
        r = b.http("PATCH", deploy_path(b), headers=SMP, data=json.dumps(patch))
        body = r.json()
        out[key] = {
            **n.status(r),
            "fields": sorted(
                c.get("field", "") for c in (body.get("details") or {}).get("causes") or []
            ),
        }
    try:
        b.apps().patch_namespaced_deployment_scale("web", b.namespace, {"spec": {"replicas": -3}})
        out["client_scale_negative"] = "accepted"
    except ApiException as exc:
        out["client_scale_negative"] = {"status": exc.status, "reason": exc.reason}
    return out


@scenario
def watch_expired(b: Backend) -> dict[str, Any]:
    """A watch from a resourceVersion too old: 200 and an ERROR event carrying 410 Expired.

    Events: the apiserver keeps no watch cache for them, so their watches are served by
    etcd, and a compacted version is too old at once (as after the apiserver's periodic
    compaction); on the emulator, 70 writes push it out of the bounded history.
    """
    path = b.ns_path("v1", "events")
    first = ""
    for i in range(70):
        event = {
            "metadata": {"name": f"ev-{i}"},
            "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": b.namespace},
            "reason": "Test",
            "message": f"event {i}",
            "type": "Normal",
        }
        r = b.http("POST", path, json=event)
        assert r.status_code == 201, r.text
        first = first or r.json()["metadata"]["resourceVersion"]
    b.expire_history(r.json()["metadata"]["resourceVersion"])
    events = list(b.watch_lines(path, resourceVersion=first, timeout=3))
    out: dict[str, Any] = {"http": events[0]["_http"], "types": [e.get("type") for e in events[1:]]}
    if len(events) > 1:
        obj = events[1].get("object") or {}
        out["object"] = {
            "kind": obj.get("kind"),
            "code": obj.get("code"),
            "reason": obj.get("reason"),
        }
    return out


@scenario
def watch_event_types(b: Backend) -> dict[str, Any]:
    """A watch from a list's resourceVersion sees ADDED, MODIFIED, DELETED."""
    path = b.ns_path("v1", "configmaps")
    listing = b.get(path) or {}
    rv = listing["metadata"]["resourceVersion"]
    b.http("POST", path, json={"metadata": {"name": "cm"}, "data": {"a": "1"}})
    b.http("PATCH", f"{path}/cm", headers=MERGE, data=json.dumps({"data": {"a": "2"}}))
    b.http("DELETE", f"{path}/cm")
    events = []
    for event in b.watch_lines(path, resourceVersion=rv, timeout=2):
        events.append(event)
        if event.get("type") == "DELETED":
            break
    return {
        "http": events[0]["_http"],
        "events": [(e["type"], (e["object"].get("data") or {}).get("a")) for e in events[1:]],
    }


@scenario
def pagination(b: Backend) -> dict[str, Any]:
    """limit/continue through raw HTTP and the Python client."""
    path = b.ns_path("v1", "configmaps")
    for i in range(5):
        b.http("POST", path, json={"metadata": {"name": f"cm-{i}", "labels": {"page": "yes"}}})
    pages = []
    params = {"limit": "2", "labelSelector": "page=yes"}
    while True:
        body = b.http("GET", path, params=params).json()
        meta = body["metadata"]
        pages.append(
            {
                "names": [i["metadata"]["name"] for i in body["items"]],
                "has_continue": bool(meta.get("continue")),
                "remainingItemCount": meta.get("remainingItemCount"),
            }
        )
        if not meta.get("continue"):
            break
        params["continue"] = meta["continue"]
    client_names = []
    token = None
    while True:
        page = b.core().list_namespaced_config_map(
            b.namespace, limit=3, label_selector="page=yes", _continue=token
        )
        client_names.append([i.metadata.name for i in page.items])
        token = page.metadata._continue
        if not token:
            break
    bad = b.http("GET", path, params={"limit": "2", "continue": "not-a-token"})
    return {"pages": pages, "client_pages": client_names, "bad_continue": n.status(bad)}


@scenario
def finalizers_and_foreground(b: Backend) -> dict[str, Any]:
    """A finalizer holds a deleted object; foreground deletion removes dependents first."""
    path = b.ns_path("v1", "configmaps")
    b.http("POST", path, json={"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    r = b.http("DELETE", f"{path}/held")
    held = b.get(f"{path}/held") or {}
    out: dict[str, Any] = {
        "delete_held": {**n.status(r), "kind": r.json().get("kind")},
        "held_after_delete": {
            "present": bool(held),
            "deletionTimestamp": bool(held.get("metadata", {}).get("deletionTimestamp")),
            "finalizers": held.get("metadata", {}).get("finalizers"),
        },
    }
    r = b.http("PATCH", f"{path}/held", headers=MERGE, json={"data": {"x": "y"}})
    out["update_while_terminating"] = n.status(r)
    r = b.http("PATCH", f"{path}/held", headers=MERGE, json={"metadata": {"finalizers": None}})
    out["release"] = n.status(r)
    out["held_gone"] = b.get(f"{path}/held") is None

    create(b, deployment_manifest("web", f"{IMAGE}:1"))
    complete(b)
    r = b.http("DELETE", deploy_path(b), json={"propagationPolicy": "Foreground"})
    body = r.json()
    out["delete_foreground"] = {
        **n.status(r),
        "kind": body.get("kind"),
        "finalizers": (body.get("metadata") or {}).get("finalizers"),
        "deletionTimestamp": bool((body.get("metadata") or {}).get("deletionTimestamp")),
    }
    b.wait("the deployment to go", lambda: b.get(deploy_path(b)) is None)
    out["replicasets_left"] = len(n.replicasets(b, "web"))
    pods = b.get(b.ns_path("v1", "pods")) or {}
    out["pods_left"] = len([p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")])
    return out


@scenario
def garbage_collection(b: Backend) -> dict[str, Any]:
    """Dependents of any kind go with their owner; Orphan strips the reference."""
    path = b.ns_path("v1", "configmaps")
    owner = b.http("POST", path, json={"metadata": {"name": "owner"}}).json()
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    b.http("POST", path, json={"metadata": {"name": "dependent", "ownerReferences": [ref]}})
    b.http("DELETE", f"{path}/owner")
    b.wait("the dependent to be collected", lambda: b.get(f"{path}/dependent") is None)
    create(b, deployment_manifest("web", f"{IMAGE}:1"))
    complete(b)
    r = b.http("DELETE", deploy_path(b), params={"propagationPolicy": "Orphan"})
    b.wait("the deployment to go", lambda: b.get(deploy_path(b)) is None)
    b.wait(
        "the owner reference to go",
        lambda: all(
            not rs["metadata"].get("ownerReferences")
            for rs in (b.get(b.ns_path("apps/v1", "replicasets")) or {}).get("items", [])
        ),
    )
    left = (b.get(b.ns_path("apps/v1", "replicasets")) or {}).get("items", [])
    return {
        "dependent_collected": True,
        "orphan_delete": n.status(r),
        "orphaned_replicasets": len(left),
        "orphans_keep_replicas": [rs["spec"]["replicas"] for rs in left],
    }


@scenario
def forbidden(b: Backend) -> dict[str, Any]:
    """A user without rights: 403 Forbidden with the verb, resource and user named."""
    create(b, deployment_manifest("web", f"{IMAGE}:1"))
    out: dict[str, Any] = {}
    r = b.http("GET", b.ns_path("apps/v1", "deployments"), user="mallory")
    out["list"] = {**n.status(r), "message": n.text(r.json().get("message", ""), b)}
    r = b.http("PATCH", deploy_path(b), user="mallory", headers=SMP, json={"spec": {"replicas": 3}})
    out["patch"] = {
        **n.status(r),
        "message": n.text(r.json().get("message", ""), b),
        "details": r.json().get("details"),
    }
    got = b.kubectl("get", "deploy", user="mallory", check=False)
    out["kubectl_get"] = {"rc": got.returncode, "stderr": n.text(got.stderr, b)}
    try:
        b.apps("mallory").patch_namespaced_deployment_scale(
            "web", b.namespace, {"spec": {"replicas": 3}}
        )
        out["client_scale"] = "accepted"
    except ApiException as exc:
        out["client_scale"] = {"status": exc.status, "reason": exc.reason}
    out["replicas_unchanged"] = (b.get(deploy_path(b)) or {})["spec"]["replicas"]
    return out


@scenario
def rollout_events(b: Backend) -> dict[str, Any]:
    """kubectl describe deploy shows the controller's ScalingReplicaSet events."""
    create(b, deployment_manifest("web", f"{IMAGE}:1"))
    complete(b)
    b.kubectl("set", "image", "deploy/web", f"app={IMAGE}:2")
    complete(b)

    def scaled_down() -> bool:
        listing = b.get(b.ns_path("v1", "events")) or {}
        return any(
            e.get("reason") == "ScalingReplicaSet" and "down" in e.get("message", "")
            for e in listing.get("items", [])
        )

    b.wait("a scale-down event", scaled_down, timeout=20)
    names = n.rs_names(b, "web")
    listing = b.get(b.ns_path("v1", "events")) or {}
    deployment_events = sorted(
        (e["type"], e["reason"], n.text(e["message"], b, names), e["source"].get("component"))
        for e in listing["items"]
        if e["involvedObject"]["kind"] == "Deployment"
    )
    described = b.kubectl("describe", "deploy", "web").stdout
    section = described.split("Events:", 1)[1] if "Events:" in described else ""
    reasons = sorted({line.split()[1] for line in section.splitlines()[3:] if line.split()})
    return {"deployment_events": deployment_events, "describe_event_reasons": reasons}


@scenario
def kubectl_create_protobuf(b: Backend) -> dict[str, Any]:
    """kubectl's imperative creates send protobuf bodies."""
    made = b.kubectl("create", "configmap", "settings", "--from-literal=a=1", check=False)
    stored = b.get(b.ns_path("v1", "configmaps", "settings"))
    return {
        "rc": made.returncode,
        "stdout": n.text(made.stdout, b),
        "stderr": n.text(made.stderr, b),
        "stored": (stored or {}).get("data"),
    }
