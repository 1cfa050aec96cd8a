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
FOREGROUND = "foregroundDeletion"
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
        # Upstream MaxSurge/MaxUnavailable are 0 for anything but RollingUpdate: a
        # Recreate Deployment is Available only with every replica available.
        return 0, 0
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
        if rs["metadata"].get("deletionTimestamp"):
            want = len(pods)  # being deleted: the garbage collector removes the pods
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
        ready_pods = [p for p in pods if _pod_state(p) == "ready"]
        # A ready pod is available once it has been ready for minReadySeconds.
        min_ready = int(rs["spec"].get("minReadySeconds") or 0)
        now = time.monotonic()
        available = 0
        for pod in ready_pods:
            since = self._ready_at.get(pod["metadata"]["uid"], now)
            if since + min_ready <= now:
                available += 1
            else:
                self._deadline(since + min_ready + 0.01)
        status: dict[str, Any] = {"replicas": len(pods)}
        if pods:
            status["fullyLabeledReplicas"] = len(pods)
        if ready_pods:
            status["readyReplicas"] = len(ready_pods)
        if available:
            status["availableReplicas"] = available
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
        recreate = (d["spec"].get("strategy") or {}).get("type") == "Recreate"
        if new_rs is None and not paused and recreate and self._old_pods_running(old):
            # recreate.go: the new ReplicaSet is created only once the old pods are gone.
            for rs in old:
                self._scale(d, rs, 0)
            self._sync_status(d, None, old)
            return
        if new_rs is None and not paused:
            new_rs = self._create_replicaset(d, old)
            rses.append(new_rs)
        elif new_rs is not None and not paused:
            new_rs = self._update_revision(d, new_rs, old)
        if not paused and not recreate and self._scaling_event(d, new_rs, old):
            # sync.go: a changed spec.replicas is applied proportionally first.
            self._proportional(d, new_rs, old)
            self._sync_status(d, new_rs, old)
            return
        if not paused:
            if recreate:
                self._recreate(d, new_rs, old)
            else:
                self._rolling(d, new_rs, old)
            self._cleanup(d, old)
        else:
            self._scale_paused(d, new_rs, old)
        self._sync_status(d, new_rs, old)

    def _event(self, d: dict[str, Any], reason: str, message: str) -> None:
        """A core/v1 Event about ``d`` from the deployment controller (what describe shows)."""
        meta = d["metadata"]
        stamp = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{random.getrandbits(64):016x}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": d.get("apiVersion", "apps/v1"),
                "kind": d.get("kind", "Deployment"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "source": {"component": "deployment-controller"},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": "Normal",
            "eventTime": None,
            "reportingComponent": "deployment-controller",
            "reportingInstance": "",
        }
        self.store.create("events", event)

    def _old_pods_running(self, old: list[dict[str, Any]]) -> bool:
        uids = {rs["metadata"]["uid"] for rs in old}
        for pod in self.store.iter_stored("pods"):
            refs = pod["metadata"].get("ownerReferences") or []
            if any(r.get("uid") in uids for r in refs):
                return True
        return False

    def _scaling_event(
        self, d: dict[str, Any], new_rs: dict[str, Any] | None, old: list[dict[str, Any]]
    ) -> bool:
        """Upstream isScalingEvent: an active ReplicaSet was sized for other replicas."""
        desired = str(d["spec"].get("replicas", 1))
        for rs in [new_rs, *old]:
            if rs is None or not int(rs["spec"].get("replicas", 0)):
                continue
            annotated = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
            if annotated is not None and annotated != desired:
                return True
        return False

    def _proportional(
        self, d: dict[str, Any], new_rs: dict[str, Any] | None, old: list[dict[str, Any]]
    ) -> None:
        """Upstream DeploymentController.scale (sync.go)."""
        desired = int(d["spec"].get("replicas", 1))
        everything = [rs for rs in [new_rs, *old] if rs is not None]
        active = [rs for rs in everything if int(rs["spec"].get("replicas", 0)) > 0]
        if len(active) <= 1:
            target = active[0] if active else (new_rs or (old[0] if old else None))
            if target is not None:
                self._scale(d, target, desired)
            return
        if (
            new_rs is not None
            and int(new_rs["spec"].get("replicas", 0)) == desired
            and int(new_rs["status"].get("availableReplicas", 0)) == desired
        ):
            for rs in old:
                self._scale(d, rs, 0)
            return
        surge, _ = resolve_fenceposts(d)
        allowed = desired + surge
        total = sum(int(rs["spec"].get("replicas", 0)) for rs in active)
        to_add = allowed - total
        newest_first = sorted(active, key=lambda rs: rs["metadata"]["creationTimestamp"])
        if to_add > 0:
            # ReplicaSetsBySizeNewer: larger first, newer first on ties.
            order = sorted(reversed(newest_first), key=lambda rs: -int(rs["spec"]["replicas"]))
        else:
            # ReplicaSetsBySizeOlder: larger first, older first on ties.
            order = sorted(newest_first, key=lambda rs: -int(rs["spec"]["replicas"]))
        sizes: dict[str, int] = {}
        added = 0
        for rs in order:
            replicas = int(rs["spec"].get("replicas", 0))
            proportion = 0
            if to_add != 0 and added != to_add:
                annotated = (rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS)
                base = (
                    int(annotated)
                    if annotated and annotated.isdigit()
                    else int((d.get("status") or {}).get("replicas", 0)) or replicas
                )
                fraction = _round(replicas * allowed / base) - replicas if base else 0
                remaining = to_add - added
                proportion = min(fraction, remaining) if to_add > 0 else max(fraction, remaining)
            sizes[rs["metadata"]["uid"]] = replicas + proportion
            added += proportion
        leftover = to_add - added
        for i, rs in enumerate(order):
            size = sizes[rs["metadata"]["uid"]]
            if i == 0 and leftover:
                size = max(size + leftover, 0)
            self._scale(d, rs, size, force_annotations=True)

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

    def _scale(
        self,
        d: dict[str, Any],
        rs: dict[str, Any],
        replicas: int,
        *,
        force_annotations: bool = False,
    ) -> dict[str, Any]:
        if int(rs["spec"].get("replicas", 0)) == replicas and not force_annotations:
            return rs
        current = self.store.get("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
        if current is None:
            return rs
        surge, _ = resolve_fenceposts(d)
        desired = int(d["spec"].get("replicas", 1))
        before = int(current["spec"].get("replicas", 0))
        if before != replicas:
            direction = "up" if replicas > before else "down"
            self._event(
                d,
                "ScalingReplicaSet",
                f"Scaled {direction} replica set {current['metadata']['name']} "
                f"from {before} to {replicas}",
            )
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
        spec_total = sum(int(rs["spec"].get("replicas", 0)) for rs in rses)
        old_status = stored.get("status") or {}
        status: dict[str, Any] = {"observedGeneration": stored["metadata"].get("generation", 1)}
        for key, value in (
            ("replicas", replicas),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            # sync.go calculateStatus: the ReplicaSets' spec replicas less the available.
            ("unavailableReplicas", max(spec_total - available, 0)),
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
        """The garbage collector: dependents (any kind) whose owners are all gone are
        deleted; an owner deleted in the foreground loses its dependents first, then its
        ``foregroundDeletion`` finalizer, and goes when no finalizer is left."""
        objects = self.store.iter_all()
        by_uid = {obj["metadata"]["uid"]: obj for _, obj in objects}
        dependents: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for plural, obj in objects:
            refs = obj["metadata"].get("ownerReferences") or []
            if not refs:
                continue
            for ref in refs:
                dependents.setdefault(ref.get("uid", ""), []).append((plural, obj))
            if all(ref.get("uid") not in by_uid for ref in refs):
                self._gc_delete(plural, obj, foreground=False)
        for plural, obj in objects:
            meta = obj["metadata"]
            held = meta.get("finalizers") or []
            if not meta.get("deletionTimestamp") or FOREGROUND not in held:
                continue
            waiting = [
                (p, dep)
                for p, dep in dependents.get(meta["uid"], [])
                if self.store.peek(p, dep["metadata"].get("namespace", ""), dep["metadata"]["name"])
            ]
            for p, dep in waiting:
                self._gc_delete(p, dep, foreground=True)
            if waiting:
                continue
            current = self.store.get(plural, meta.get("namespace", ""), meta["name"])
            if current is None:
                continue
            left = [f for f in current["metadata"].get("finalizers") or [] if f != FOREGROUND]
            if left:
                current["metadata"]["finalizers"] = left
                self.store.update(plural, current)
            else:
                self.store.delete(plural, meta.get("namespace", ""), meta["name"])

    def _gc_delete(self, plural: str, obj: dict[str, Any], *, foreground: bool) -> None:
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        current = self.store.get(plural, ns, name)
        if current is None:
            return
        finalizers = list(current["metadata"].get("finalizers") or [])
        if foreground and plural != "pods" and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        if finalizers:
            if not current["metadata"].get("deletionTimestamp") or finalizers != (
                current["metadata"].get("finalizers") or []
            ):
                current["metadata"]["finalizers"] = finalizers
                current["metadata"].setdefault("deletionTimestamp", now_rfc3339())
                current["metadata"].setdefault("deletionGracePeriodSeconds", 0)
                self.store.update(plural, current)
            return
        self.store.delete(plural, ns, name)
        self._ready_at.pop(meta["uid"], None)


def _round(value: float) -> int:
    """Go's math.Round: halves away from zero."""
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


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
