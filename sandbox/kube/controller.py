"""Deployment, ReplicaSet and pod-readiness controllers, modelled on kube-controller-manager.

Rollback tooling reads what these controllers write: ReplicaSets named
`<deployment>-<pod-template-hash>`, the `deployment.kubernetes.io/revision` and
`revision-history` annotations, and the Deployment's status and conditions. The rolling
update arithmetic (maxSurge / maxUnavailable, unhealthy old replicas cleaned up first)
follows the upstream controller so that a crashing release stalls with the old pods
still serving, exactly as it would on a cluster.
"""

from __future__ import annotations

import copy
import json
import math
import random
import threading
import time
from calendar import timegm
from collections.abc import Callable
from typing import Any

from .store import Store, now_rfc3339

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
# Annotations the upstream controller never copies from a Deployment to its ReplicaSets.
SKIPPED_ANNOTATIONS = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
}
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
NODE_NAME = "sandbox-node"


def safe_encode(value: int) -> str:
    """k8s.io/apimachinery rand.SafeEncodeString applied to the decimal hash."""
    return "".join(_SAFE_ALPHABET[ord(ch) % len(_SAFE_ALPHABET)] for ch in str(value))


def template_hash(template: dict[str, Any], collision_count: int = 0) -> str:
    """FNV-32a over a canonical encoding of the template, encoded like upstream."""
    data = json.dumps(strip_hash(template), sort_keys=True, separators=(",", ":")).encode()
    h = 0x811C9DC5
    for byte in data + (str(collision_count).encode() if collision_count else b""):
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return safe_encode(h)


def strip_hash(template: dict[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(template)
    labels = (clean.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return clean


def parse_time(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    return float(timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))


def revision_of(obj: dict[str, Any]) -> int:
    value = (obj["metadata"].get("annotations") or {}).get(REVISION, "0")
    return int(value) if str(value).isdigit() else 0


def resolve_fenceposts(deployment: dict[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as absolute numbers, rounded like upstream."""
    spec = deployment["spec"]
    desired = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, desired
    rolling = strategy.get("rollingUpdate") or {}

    def scaled(value: Any, default: str, round_up: bool) -> int:
        value = default if value is None else value
        if isinstance(value, str) and value.endswith("%"):
            exact = float(value[:-1]) * desired / 100
            return math.ceil(exact) if round_up else math.floor(exact)
        return int(value)

    surge = scaled(rolling.get("maxSurge"), "25%", True)
    unavailable = scaled(rolling.get("maxUnavailable"), "25%", False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    uid = owner["metadata"]["uid"]
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in obj["metadata"].get("ownerReferences") or []
    )


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _set_condition(
    status: dict[str, Any],
    ctype: str,
    value: str,
    reason: str,
    message: str,
    *,
    touch: bool = False,
) -> None:
    """Upstream SetDeploymentCondition; `touch` refreshes lastUpdateTime on progress."""
    conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
    current = next((c for c in conditions if c["type"] == ctype), None)
    if current and current["status"] == value and current["reason"] == reason and not touch:
        return
    stamp = now_rfc3339()
    new = {
        "type": ctype,
        "status": value,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }
    if current is not None:
        if current["status"] == value:
            new["lastTransitionTime"] = current["lastTransitionTime"]
        conditions[conditions.index(current)] = new
    else:
        conditions.append(new)


class Controllers:
    """Reconciles every Deployment, ReplicaSet and Pod whenever the store changes."""

    def __init__(
        self, store: Store, *, ready_delay: float, is_crashing: Callable[[str], bool]
    ) -> None:
        self.store = store
        self.ready_delay = ready_delay
        self.is_crashing = is_crashing
        self._ready_at: dict[str, float] = {}
        self._kick = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_deadline: float | None = None
        store.add_listener(self._kick.set)

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kube-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def kick(self) -> None:
        self._kick.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            timeout = None
            if self._next_deadline is not None:
                timeout = max(0.0, self._next_deadline - time.monotonic())
            self._kick.wait(timeout if timeout is not None else 1.0)
            self._kick.clear()
            if self._stopping.is_set():
                return
            with self.store.lock:
                self.reconcile()

    # -- the reconcile pass -----------------------------------------------------------

    def reconcile(self) -> None:
        self._next_deadline = None
        for _ in range(20):
            before = self.store.resource_version
            self._sync_pods()
            for rs in self.store.list("replicasets"):
                self._sync_replicaset(rs)
            for deployment in self.store.list("deployments"):
                self._sync_deployment(deployment)
            self._collect_garbage()
            if self.store.resource_version == before:
                break
        self._kick.clear()

    def _deadline(self, when_monotonic: float) -> None:
        if self._next_deadline is None or when_monotonic < self._next_deadline:
            self._next_deadline = when_monotonic

    # -- pods -------------------------------------------------------------------------

    def _sync_pods(self) -> None:
        now = time.monotonic()
        for pod in self.store.list("pods"):
            uid = pod["metadata"]["uid"]
            ready_at = self._ready_at.setdefault(uid, now + self.ready_delay)
            images = [c.get("image", "") for c in pod["spec"].get("containers") or []]
            crashing = any(self.is_crashing(i) for i in images)
            if ready_at > now:
                self._deadline(ready_at)
                continue
            desired = "crash" if crashing else "ready"
            if _pod_state(pod) in (desired, "ready"):
                continue
            pod["status"] = _pod_status(pod, ready=not crashing, crashed=crashing)
            self.store.update("pods", pod)

    def heal(self, image: str) -> None:
        """Crash-looping pods of `image` restart and become ready after the usual delay."""
        with self.store.lock:
            now = time.monotonic()
            for pod in self.store.list("pods"):
                images = [c.get("image") for c in pod["spec"].get("containers") or []]
                if image in images and _pod_state(pod) == "crash":
                    self._ready_at[pod["metadata"]["uid"]] = now + self.ready_delay
        self.kick()

    # -- replicasets ------------------------------------------------------------------

    def _sync_replicaset(self, rs: dict[str, Any]) -> None:
        ns = rs["metadata"]["namespace"]
        pods = [p for p in self.store.list("pods", ns) if owned_by(p, rs)]
        want = int(rs["spec"].get("replicas", 0))
        if len(pods) < want:
            for _ in range(want - len(pods)):
                pods.append(self._create_pod(rs))
        elif len(pods) > want:
            # Upstream deletes not-ready pods first, then the newest.
            pods.sort(key=lambda p: (_pod_state(p) == "ready", p["metadata"]["creationTimestamp"]))
            for pod in pods[: len(pods) - want]:
                self.store.delete("pods", ns, pod["metadata"]["name"])
                self._ready_at.pop(pod["metadata"]["uid"], None)
            pods = pods[len(pods) - want :]
        ready = sum(1 for p in pods if _pod_state(p) == "ready")
        status: dict[str, Any] = {"replicas": len(pods)}
        if pods:
            status["fullyLabeledReplicas"] = len(pods)
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        status["observedGeneration"] = rs["metadata"].get("generation", 1)
        if rs.get("status") != status:
            current = self.store.get("replicasets", ns, rs["metadata"]["name"])
            if current is not None:
                current["status"] = status
                self.store.update("replicasets", current)

    def _create_pod(self, rs: dict[str, Any]) -> dict[str, Any]:
        template = copy.deepcopy(rs["spec"]["template"])
        meta = template.get("metadata") or {}
        meta.pop("creationTimestamp", None)
        suffix = "".join(random.choice(_SAFE_ALPHABET) for _ in range(5))
        meta.update(
            name=f"{rs['metadata']['name']}-{suffix}",
            generateName=f"{rs['metadata']['name']}-",
            namespace=rs["metadata"]["namespace"],
            ownerReferences=[owner_reference(rs)],
        )
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}
        pod["spec"]["nodeName"] = NODE_NAME
        pod["status"] = _pod_status(pod, ready=False, crashed=False)
        created = self.store.create("pods", pod)
        self._ready_at[created["metadata"]["uid"]] = time.monotonic() + self.ready_delay
        self._deadline(time.monotonic() + self.ready_delay)
        return created

    # -- deployments ------------------------------------------------------------------

    def _sync_deployment(self, d: dict[str, Any]) -> None:
        ns = d["metadata"]["namespace"]
        if d["metadata"].get("deletionTimestamp"):
            return
        rses = [rs for rs in self.store.list("replicasets", ns) if owned_by(rs, d)]
        template = d["spec"]["template"]
        new_rs = next(
            (rs for rs in rses if strip_hash(rs["spec"]["template"]) == strip_hash(template)), None
        )
        old = [rs for rs in rses if rs is not new_rs]
        paused = bool(d["spec"].get("paused"))
        if new_rs is None and not paused:
            new_rs = self._create_replicaset(d, old)
            rses.append(new_rs)
        elif new_rs is not None and not paused:
            new_rs = self._update_revision(d, new_rs, old)
        if not paused:
            if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
                self._recreate(d, new_rs, old)
            else:
                self._rolling(d, new_rs, old)
            self._cleanup(d, old)
        else:
            self._scale_paused(d, new_rs, old)
        self._sync_status(d, new_rs, old)

    def _create_replicaset(self, d: dict[str, Any], old: list[dict[str, Any]]) -> dict[str, Any]:
        template = copy.deepcopy(d["spec"]["template"])
        collisions = 0
        while True:
            pod_hash = template_hash(template, collisions)
            name = f"{d['metadata']['name']}-{pod_hash}"
            if self.store.peek("replicasets", d["metadata"]["namespace"], name) is None:
                break
            collisions += 1
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        revision = max((revision_of(rs) for rs in old), default=0) + 1
        surge, _ = resolve_fenceposts(d)
        desired = int(d["spec"].get("replicas", 1))
        annotations = self._copied_annotations(d)
        annotations.update(
            {
                REVISION: str(revision),
                DESIRED_REPLICAS: str(desired),
                MAX_REPLICAS: str(desired + surge),
            }
        )
        labels = dict(template["metadata"]["labels"])
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": d["metadata"]["namespace"],
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [owner_reference(d)],
                "generation": 1,
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
            "status": {"replicas": 0},
        }
        if not rs["spec"]["minReadySeconds"]:
            del rs["spec"]["minReadySeconds"]
        created = self.store.create("replicasets", rs)
        self._set_deployment_revision(d, revision)
        _set_condition(
            d["status"],
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            f'Created new replica set "{name}"',
        )
        return created

    def _copied_annotations(self, d: dict[str, Any]) -> dict[str, str]:
        return {
            k: v
            for k, v in (d["metadata"].get("annotations") or {}).items()
            if k not in SKIPPED_ANNOTATIONS
        }

    def _update_revision(
        self, d: dict[str, Any], rs: dict[str, Any], old: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Upstream SetNewReplicaSetAnnotations: a reused ReplicaSet gets the next revision."""
        revision = max((revision_of(o) for o in old), default=0) + 1
        annotations = dict(rs["metadata"].get("annotations") or {})
        current = revision_of(rs)
        if current < revision:
            if current:
                history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
                annotations[REVISION_HISTORY] = ",".join([*history, str(current)])
            annotations[REVISION] = str(revision)
        else:
            revision = current
        annotations.update(self._copied_annotations(d))
        if annotations != (rs["metadata"].get("annotations") or {}):
            rs["metadata"]["annotations"] = annotations
            rs = self.store.update("replicasets", rs)
        self._set_deployment_revision(d, revision)
        return rs

    def _set_deployment_revision(self, d: dict[str, Any], revision: int) -> None:
        annotations = d["metadata"].setdefault("annotations", {})
        if annotations.get(REVISION) != str(revision):
            annotations[REVISION] = str(revision)
            stored = self.store.get(
                "deployments", d["metadata"]["namespace"], d["metadata"]["name"]
            )
            if stored is not None:
                stored["metadata"].setdefault("annotations", {})[REVISION] = str(revision)
                d["metadata"]["resourceVersion"] = self.store.update("deployments", stored)[
                    "metadata"
                ]["resourceVersion"]

    def _scale(self, d: dict[str, Any], rs: dict[str, Any], replicas: int) -> dict[str, Any]:
        if int(rs["spec"].get("replicas", 0)) == replicas:
            return rs
        current = self.store.get("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
        if current is None:
            return rs
        surge, _ = resolve_fenceposts(d)
        desired = int(d["spec"].get("replicas", 1))
        current["spec"]["replicas"] = replicas
        current["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        annotations = current["metadata"].setdefault("annotations", {})
        annotations[DESIRED_REPLICAS] = str(desired)
        annotations[MAX_REPLICAS] = str(desired + surge)
        updated = self.store.update("replicasets", current)
        self._sync_replicaset(updated)
        return (
            self.store.get("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
            or updated
        )

    def _rolling(
        self, d: dict[str, Any], new_rs: dict[str, Any] | None, old: list[dict[str, Any]]
    ) -> None:
        if new_rs is None:
            return
        desired = int(d["spec"].get("replicas", 1))
        surge, max_unavailable = resolve_fenceposts(d)
        new_count = int(new_rs["spec"].get("replicas", 0))
        everything = [new_rs, *old]
        if new_count > desired:
            new_rs = self._scale(d, new_rs, desired)
        elif new_count < desired:
            current = sum(int(rs["spec"].get("replicas", 0)) for rs in everything)
            max_total = desired + surge
            if current < max_total:
                target = new_count + min(max_total - current, desired - new_count)
                new_rs = self._scale(d, new_rs, target)
        old = [
            self.store.get("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs
            for rs in old
        ]
        old_count = sum(int(rs["spec"].get("replicas", 0)) for rs in old)
        if old_count == 0:
            return
        all_count = old_count + int(new_rs["spec"].get("replicas", 0))
        min_available = desired - max_unavailable
        new_unavailable = int(new_rs["spec"].get("replicas", 0)) - int(
            new_rs["status"].get("availableReplicas", 0)
        )
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return
        old.sort(key=lambda rs: rs["metadata"]["creationTimestamp"])
        cleaned = 0
        for i, rs in enumerate(old):
            if cleaned >= max_scaled_down:
                break
            replicas = int(rs["spec"].get("replicas", 0))
            unhealthy = replicas - int(rs["status"].get("availableReplicas", 0))
            if replicas == 0 or unhealthy <= 0:
                continue
            step = min(max_scaled_down - cleaned, unhealthy)
            old[i] = self._scale(d, rs, replicas - step)
            cleaned += step
        available = sum(int(rs["status"].get("availableReplicas", 0)) for rs in [new_rs, *old])
        budget = min(available - min_available, max_scaled_down - cleaned)
        for rs in old:
            if budget <= 0:
                break
            replicas = int(rs["spec"].get("replicas", 0))
            step = min(replicas, budget)
            if step:
                self._scale(d, rs, replicas - step)
                budget -= step

    def _recreate(
        self, d: dict[str, Any], new_rs: dict[str, Any] | None, old: list[dict[str, Any]]
    ) -> None:
        active = [rs for rs in old if int(rs["spec"].get("replicas", 0)) > 0]
        for rs in active:
            self._scale(d, rs, 0)
        if new_rs is not None and not any(
            int(rs["status"].get("replicas", 0)) for rs in old if rs not in active
        ):
            self._scale(d, new_rs, int(d["spec"].get("replicas", 1)))

    def _scale_paused(
        self, d: dict[str, Any], new_rs: dict[str, Any] | None, old: list[dict[str, Any]]
    ) -> None:
        # While paused only a plain scale is applied, and only when one ReplicaSet is active.
        active = [
            rs for rs in [new_rs, *old] if rs is not None and int(rs["spec"].get("replicas", 0)) > 0
        ]
        if len(active) == 1:
            self._scale(d, active[0], int(d["spec"].get("replicas", 1)))

    def _cleanup(self, d: dict[str, Any], old: list[dict[str, Any]]) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        fresh = [
            self.store.get("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
            for rs in old
        ]
        cleanable = [
            rs
            for rs in fresh
            if rs is not None
            and int(rs["spec"].get("replicas", 0)) == 0
            and int(rs["status"].get("replicas", 0)) == 0
            and rs["status"].get("observedGeneration") == rs["metadata"].get("generation")
        ]
        excess = len(cleanable) - int(limit)
        if excess <= 0:
            return
        cleanable.sort(key=revision_of)
        for rs in cleanable[:excess]:
            self.store.delete("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _sync_status(
        self, d: dict[str, Any], new_rs: dict[str, Any] | None, old: list[dict[str, Any]]
    ) -> None:
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        stored = self.store.get("deployments", ns, name)
        if stored is None:
            return
        fresh = [
            self.store.get("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
            for rs in ([new_rs] if new_rs else []) + old
        ]
        rses = [rs for rs in fresh if rs is not None]
        new_fresh = rses[0] if new_rs is not None and rses else None
        desired = int(stored["spec"].get("replicas", 1))
        _, max_unavailable = resolve_fenceposts(stored)
        replicas = sum(int(rs["status"].get("replicas", 0)) for rs in rses)
        updated = int(new_fresh["status"].get("replicas", 0)) if new_fresh else 0
        ready = sum(int(rs["status"].get("readyReplicas", 0)) for rs in rses)
        available = sum(int(rs["status"].get("availableReplicas", 0)) for rs in rses)
        old_status = stored.get("status") or {}
        status: dict[str, Any] = {"observedGeneration": stored["metadata"].get("generation", 1)}
        for key, value in (
            ("replicas", replicas),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("unavailableReplicas", max(desired - available, 0)),
        ):
            if value:
                status[key] = value
        status["conditions"] = copy.deepcopy(
            (d.get("status") or {}).get("conditions") or old_status.get("conditions") or []
        )
        if available >= desired - max_unavailable:
            _set_condition(
                status,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        else:
            _set_condition(
                status,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        self._progress(stored, status, old_status, new_fresh)
        status["conditions"].sort(
            key=lambda c: {"Available": 0, "Progressing": 1}.get(c["type"], 2)
        )
        if status != old_status:
            stored["status"] = status
            self.store.update("deployments", stored)

    def _progress(
        self,
        d: dict[str, Any],
        status: dict[str, Any],
        old_status: dict[str, Any],
        new_rs: dict[str, Any] | None,
    ) -> None:
        rs_name = new_rs["metadata"]["name"] if new_rs else ""
        if d["spec"].get("paused"):
            _set_condition(
                status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused"
            )
            return
        current = next((c for c in status["conditions"] if c["type"] == "Progressing"), None)
        if current is not None and current["reason"] == "DeploymentPaused":
            _set_condition(
                status, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed"
            )
            current = next(c for c in status["conditions"] if c["type"] == "Progressing")
        deadline = d["spec"].get("progressDeadlineSeconds")
        if deadline is None:
            return
        desired = int(d["spec"].get("replicas", 1))
        complete_before = (
            current is not None
            and current["reason"] == "NewReplicaSetAvailable"
            and status.get("replicas", 0) == status.get("updatedReplicas", 0)
        )
        if complete_before:
            return
        if (
            status.get("updatedReplicas", 0) == desired
            and status.get("replicas", 0) == desired
            and status.get("availableReplicas", 0) == desired
            and status["observedGeneration"] >= d["metadata"].get("generation", 1)
        ):
            _set_condition(
                status,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
            )
            return
        old_old = old_status.get("replicas", 0) - old_status.get("updatedReplicas", 0)
        new_old = status.get("replicas", 0) - status.get("updatedReplicas", 0)
        progressing = (
            status.get("updatedReplicas", 0) > old_status.get("updatedReplicas", 0)
            or new_old < old_old
            or status.get("readyReplicas", 0) > old_status.get("readyReplicas", 0)
            or status.get("availableReplicas", 0) > old_status.get("availableReplicas", 0)
        )
        if progressing:
            _set_condition(
                status,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" is progressing.',
                touch=True,
            )
            current = next(c for c in status["conditions"] if c["type"] == "Progressing")
        if current is None or current["reason"] == "ProgressDeadlineExceeded":
            return
        expires = parse_time(current["lastUpdateTime"]) + int(deadline)
        if expires < time.time():
            _set_condition(
                status,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
            )
        else:
            self._deadline(time.monotonic() + (expires - time.time()) + 0.05)

    # -- garbage collection -----------------------------------------------------------

    def _collect_garbage(self) -> None:
        """Background cascading deletion: dependents whose controller owner is gone."""
        uids = {
            o["metadata"]["uid"]
            for plural in ("deployments", "replicasets")
            for o in self.store.iter_stored(plural)
        }
        for plural in ("replicasets", "pods"):
            for obj in self.store.list(plural):
                refs = [
                    r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")
                ]
                if (
                    refs
                    and refs[0].get("kind") in ("Deployment", "ReplicaSet")
                    and refs[0]["uid"] not in uids
                ):
                    self.store.delete(plural, obj["metadata"]["namespace"], obj["metadata"]["name"])
                    self._ready_at.pop(obj["metadata"]["uid"], None)


def _pod_state(pod: dict[str, Any]) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    if statuses and all(s.get("ready") for s in statuses):
        return "ready"
    if any("waiting" in (s.get("state") or {}) for s in statuses):
        return "crash"
    return "starting"


def _pod_status(pod: dict[str, Any], *, ready: bool, crashed: bool) -> dict[str, Any]:
    started = pod["metadata"].get("creationTimestamp") or now_rfc3339()
    now = now_rfc3339()
    flag = "True" if ready else "False"
    containers = []
    for c in pod["spec"].get("containers") or []:
        status: dict[str, Any] = {
            "name": c.get("name"),
            "image": c.get("image"),
            "imageID": "",
            "ready": ready,
            "restartCount": 1 if crashed else 0,
            "started": not crashed,
            "containerID": f"containerd://{c.get('name')}",
        }
        if crashed:
            status["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 10s restarting failed container={c.get('name')}",
                }
            }
            status["lastState"] = {
                "terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "startedAt": started,
                    "finishedAt": now,
                }
            }
        else:
            status["state"] = {"running": {"startedAt": started}}
        containers.append(status)
    conditions = [
        {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": started,
        },
        {
            "type": "Initialized",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": started,
        },
        {
            "type": "ContainersReady",
            "status": flag,
            "lastProbeTime": None,
            "lastTransitionTime": now,
        },
        {"type": "Ready", "status": flag, "lastProbeTime": None, "lastTransitionTime": now},
    ]
    return {
        "phase": "Running",
        "conditions": conditions,
        "hostIP": "10.0.0.1",
        "podIP": f"10.244.0.{random.randint(2, 254)}",
        "startTime": started,
        "containerStatuses": containers,
        "qosClass": "BestEffort",
    }
