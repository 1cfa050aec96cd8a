"""StatefulSets and DaemonSets: their history, undo, preview and rollout status as kubectl has them.

Neither keeps ReplicaSets. Their controllers record every pod template they ran as a
``ControllerRevision`` owned by the workload (``revision`` is its number, ``data`` the
strategic-merge patch ``{"spec": {"template": {..., "$patch": "replace"}}}``), and
``kubectl rollout undo statefulset/x [--to-revision N]`` is that patch applied to the
workload (k8s.io/kubectl/pkg/polymorphichelpers/rollback.go). Rolling back re-uses the
target's ControllerRevision and renumbers it as the newest, so its name is the stable
identity and the number only its place in the history now; the same as a Deployment's
ReplicaSets, which is why the history is told in ``Revision``s here too.

Everything but the three reads (``read_workload``, ``owned_revisions``, ``patch_workload``)
is pure.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from rollback_bot.catalog import Service
from rollback_bot.kube.client import KubeApis, explain, read_json
from rollback_bot.kube.model import Verification
from rollback_bot.kube.preview import Preview, gitops_warning, template_changes
from rollback_bot.kube.revisions import (
    MIN_HISTORY,
    Revision,
    configmaps_referenced,
    images_of,
    label_selector,
    list_revisions,
    same_template,
)

STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
REVISION_HASH = "controller-revision-hash"  # label on a ControllerRevision (and on pods)
KIND_NAMES = {"statefulset": "StatefulSet", "daemonset": "DaemonSet"}
WORKLOAD_KINDS = tuple(KIND_NAMES)


def read_workload(apis: KubeApis, kind: str, namespace: str, name: str) -> dict[str, Any]:
    response: Any
    try:
        if kind == "statefulset":
            response = apis.apps.read_namespaced_stateful_set(
                name, namespace, _preload_content=False
            )
        else:
            response = apis.apps.read_namespaced_daemon_set(name, namespace, _preload_content=False)
    except ApiException as exc:
        raise explain(exc, f"{kind} {namespace}/{name}") from exc
    return read_json(response)


def owned_revisions(apis: KubeApis, kind: str, workload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """kubectl's ``controlledHistory``: ControllerRevisions by selector, controlled by the UID."""
    meta = workload["metadata"]
    namespace = meta["namespace"]
    try:
        response = apis.apps.list_namespaced_controller_revision(
            namespace,
            label_selector=label_selector((workload.get("spec") or {}).get("selector") or {}),
            _preload_content=False,
        )
    except ApiException as exc:
        raise explain(exc, f"controllerrevisions of {kind} {namespace}/{meta['name']}") from exc
    items: list[dict[str, Any]] = read_json(response).get("items") or []
    uid = meta.get("uid")
    return [
        cr
        for cr in items
        if any(
            ref.get("controller") and ref.get("uid") == uid
            for ref in (cr.get("metadata") or {}).get("ownerReferences") or []
        )
    ]


def template_of(controller_revision: Mapping[str, Any]) -> dict[str, Any]:
    """The pod template a ControllerRevision records (its ``data`` without ``$patch``)."""
    data = controller_revision.get("data") or {}
    template = copy.deepcopy(((data.get("spec") or {}).get("template")) or {})
    template.pop("$patch", None)
    return dict(template)


def to_revision(controller_revision: Mapping[str, Any]) -> Revision:
    meta = controller_revision["metadata"]
    template = template_of(controller_revision)
    raw_time = meta.get("creationTimestamp")
    created = datetime.fromisoformat(raw_time.replace("Z", "+00:00")) if raw_time else None
    return Revision(
        number=int(controller_revision.get("revision") or 0),
        replicaset=str(meta["name"]),
        images=images_of(template),
        created_at=created,
        replicas=0,
        ready=0,
        template=template,
        configmaps=configmaps_referenced(template),
        annotations=dict(meta.get("annotations") or {}),
        identity=str(meta["name"]),
    )


def revisions_of(
    controller_revisions: Sequence[Mapping[str, Any]], workload: Mapping[str, Any], kind: str
) -> list[Revision]:
    """Oldest first; the newest carries the workload's replica counts (for "stable")."""
    found = sorted((to_revision(cr) for cr in controller_revisions), key=lambda r: r.number)
    if found:
        desired, ready = desired_and_ready(kind, workload)
        last = found[-1]
        found[-1] = replace(last, replicas=desired, ready=ready)
    return found


def list_workload_revisions(apis: KubeApis, kind: str, namespace: str, name: str) -> list[Revision]:
    workload = read_workload(apis, kind, namespace, name)
    return revisions_of(owned_revisions(apis, kind, workload), workload, kind)


def service_revisions(apis: KubeApis, service: Service) -> list[Revision]:
    """A service's history whatever its target kind: ReplicaSets, ControllerRevisions or a
    Helm release's Secrets."""
    if service.helm is not None:
        from rollback_bot.kube.helm_releases import release_revisions

        return release_revisions(apis, service.namespace, service.helm.release)
    if service.target_kind in KIND_NAMES:
        return list_workload_revisions(
            apis, service.target_kind, service.namespace, service.target_name
        )
    return list_revisions(apis, service.namespace, service.deployment)


def desired_and_ready(kind: str, workload: Mapping[str, Any]) -> tuple[int, int]:
    spec, status = workload.get("spec") or {}, workload.get("status") or {}
    if kind == "statefulset":
        return int(spec.get("replicas", 1)), int(status.get("readyReplicas") or 0)
    return int(status.get("desiredNumberScheduled") or 0), int(status.get("numberReady") or 0)


class NoRevision(Exception):
    """kubectl's refusal, word for word."""


def choose_workload_target(revisions: Sequence[Revision], to_revision: int | None) -> Revision:
    """kubectl's ``findHistory``: the named revision, or the second-highest one."""
    number = to_revision or 0
    if number == 0:
        if len(revisions) <= 1:
            raise NoRevision("no last revision to roll back to")
        return sorted(revisions, key=lambda r: r.number)[-2]
    found = next((r for r in revisions if r.number == number), None)
    if found is None:
        raise NoRevision(f"unable to find specified revision {number} in history")
    return found


def live_revision(revisions: Sequence[Revision], workload: Mapping[str, Any]) -> Revision | None:
    """The revision whose template the workload has now (the newest such)."""
    live = (workload.get("spec") or {}).get("template") or {}
    return next((r for r in reversed(revisions) if same_template(r.template, live)), None)


def undo_patch(workload: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """The ControllerRevision's ``data`` as kubectl sends it, plus the resourceVersion it was
    decided on: a concurrent change answers 409 instead of being overwritten."""
    body: dict[str, Any] = copy.deepcopy(dict(data))
    body["metadata"] = {"resourceVersion": workload["metadata"]["resourceVersion"]}
    return body


def patch_workload(
    apis: KubeApis, kind: str, namespace: str, name: str, body: Mapping[str, Any], *, dry_run: bool
) -> dict[str, Any]:
    """One strategic-merge PATCH; ``ApiException`` propagates for the caller's retry rules."""
    call = (
        apis.apps.patch_namespaced_stateful_set
        if kind == "statefulset"
        else apis.apps.patch_namespaced_daemon_set
    )
    response = call(
        name,
        namespace,
        dict(body),
        dry_run="All" if dry_run else None,
        _content_type=STRATEGIC_MERGE_PATCH,
        _preload_content=False,
    )
    return read_json(response)


# -- rollout status, as kubectl's StatefulSetStatusViewer / DaemonSetStatusViewer -------------


def update_strategy(workload: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    strategy = (workload.get("spec") or {}).get("updateStrategy") or {}
    return str(strategy.get("type") or "RollingUpdate"), dict(strategy.get("rollingUpdate") or {})


def on_delete_text(kind: str) -> str:
    return (
        f"update strategy OnDelete: the {kind}'s template is rolled back, but running pods keep "
        "the old one until each is deleted (by a person or an eviction); nothing replaces them"
    )


def statefulset_status(sts: Mapping[str, Any]) -> Verification:
    meta, spec, status = sts.get("metadata") or {}, sts.get("spec") or {}, sts.get("status") or {}
    kind, rolling = update_strategy(sts)
    if kind != "RollingUpdate":
        return Verification(True, True, on_delete_text("statefulset"))
    observed = int(status.get("observedGeneration") or 0)
    if observed == 0 or int(meta.get("generation") or 0) > observed:
        return Verification(False, False, "Waiting for statefulset spec update to be observed...")
    replicas = spec.get("replicas")
    ready = int(status.get("readyReplicas") or 0)
    if replicas is not None and ready < int(replicas):
        return Verification(
            False, False, f"Waiting for {int(replicas) - ready} pods to be ready..."
        )
    updated = int(status.get("updatedReplicas") or 0)
    if rolling:
        partition = rolling.get("partition")
        if replicas is not None and partition is not None:
            wanted = int(replicas) - int(partition)
            if updated < wanted:
                return Verification(
                    False,
                    False,
                    "Waiting for partitioned roll out to finish: "
                    f"{updated} out of {wanted} new pods have been updated...",
                )
        return Verification(
            True, True, f"partitioned roll out complete: {updated} new pods have been updated..."
        )
    update_rev, current_rev = status.get("updateRevision"), status.get("currentRevision")
    if update_rev != current_rev:
        return Verification(
            False,
            False,
            f"waiting for statefulset rolling update to complete {updated} pods at revision "
            f"{update_rev}...",
        )
    return Verification(
        True,
        True,
        f"statefulset rolling update complete {int(status.get('currentReplicas') or 0)} pods at "
        f"revision {current_rev}...",
    )


def daemonset_status(ds: Mapping[str, Any]) -> Verification:
    meta, status = ds.get("metadata") or {}, ds.get("status") or {}
    name = meta.get("name", "")
    kind, _ = update_strategy(ds)
    if kind != "RollingUpdate":
        return Verification(True, True, on_delete_text("daemonset"))
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return Verification(False, False, "Waiting for daemon set spec update to be observed...")
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    if updated < desired:
        return Verification(
            False,
            False,
            f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} '
            "new pods have been updated...",
        )
    if available < desired:
        return Verification(
            False,
            False,
            f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} '
            "updated pods are available...",
        )
    return Verification(True, True, f'daemon set "{name}" successfully rolled out')


def workload_status(kind: str, workload: Mapping[str, Any]) -> Verification:
    return statefulset_status(workload) if kind == "statefulset" else daemonset_status(workload)


# -- preview ------------------------------------------------------------------------------


def strategy_line(kind: str, workload: Mapping[str, Any]) -> str:
    strategy, rolling = update_strategy(workload)
    if strategy != "RollingUpdate":
        return f"update strategy: {strategy}"
    if kind == "statefulset":
        return f"update strategy: RollingUpdate (partition {int(rolling.get('partition') or 0)})"
    surge, unavailable = rolling.get("maxSurge", 0), rolling.get("maxUnavailable", 1)
    return f"update strategy: RollingUpdate (maxUnavailable {unavailable}, maxSurge {surge})"


def pods_replaced(kind: str, workload: Mapping[str, Any]) -> str:
    """Which pods the rollback makes the controller replace, in the order it does."""
    name = (workload.get("metadata") or {}).get("name", "")
    strategy, rolling = update_strategy(workload)
    if strategy != "RollingUpdate":
        return "pods replaced: none until each is deleted (OnDelete)"
    if kind == "statefulset":
        replicas = int((workload.get("spec") or {}).get("replicas", 1))
        partition = int(rolling.get("partition") or 0)
        ordinals = list(range(replicas - 1, max(partition, 0) - 1, -1))
        if not ordinals:
            return f"pods replaced: none (partition {partition} >= {replicas} replicas)"
        kept = ""
        if partition == 1:
            kept = f"; {name}-0 stays (below the partition)"
        elif partition > 1:
            kept = f"; {name}-0..{name}-{partition - 1} stay (below the partition)"
        listed = ", ".join(f"{name}-{i}" for i in ordinals)
        return f"pods replaced: {listed}, one at a time, highest ordinal first{kept}"
    desired = int((workload.get("status") or {}).get("desiredNumberScheduled") or 0)
    unavailable = rolling.get("maxUnavailable", 1)
    return f"pods replaced: all {desired} (one per node), maxUnavailable {unavailable} at a time"


def _history_warning(kind: str, workload: Mapping[str, Any]) -> str | None:
    limit = (workload.get("spec") or {}).get("revisionHistoryLimit")
    if limit is not None and int(limit) < MIN_HISTORY:
        return (
            f"revisionHistoryLimit is {limit}: keep at least {MIN_HISTORY} ControllerRevisions "
            f"of the {kind} so there is something to roll back to"
        )
    return None


def build_workload_preview(
    kind: str,
    workload: Mapping[str, Any],
    current: Revision | None,
    target: Revision,
) -> Preview:
    """The lines for ``Plan.changes`` and ``Plan.warnings`` of a StatefulSet/DaemonSet undo."""
    live = (workload.get("spec") or {}).get("template") or {}
    from_label = f"revision {current.number}" if current else "the live template"
    changes = [f"template: {from_label} -> revision {target.number} ({target.replicaset})"]
    changes += template_changes(live, target.template)
    if _normal_rest(live) != _normal_rest(target.template):
        changes.append("template: other pod spec fields differ too (see the revision's data)")
    changes.append(strategy_line(kind, workload))
    changes.append(pods_replaced(kind, workload))
    warnings = [w for w in (gitops_warning(workload), _history_warning(kind, workload)) if w]
    strategy, _ = update_strategy(workload)
    if strategy != "RollingUpdate":
        warnings.append(on_delete_text(kind))
    if kind == "statefulset":
        warnings.append(
            "volumes and data are NOT rolled back: PersistentVolumeClaims and what the old "
            "release wrote to them stay as they are (a schema migration stays migrated)"
        )
    return Preview(tuple(changes), tuple(warnings))


def _normal_rest(template: Mapping[str, Any]) -> Any:
    """The template minus what ``template_changes`` already tells (images, env, envFrom)."""
    out = copy.deepcopy(dict(template))
    for container in (out.get("spec") or {}).get("containers") or []:
        for key in ("image", "env", "envFrom"):
            container.pop(key, None)
    return _drop_empty(out)


def _drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        cleaned = {k: _drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value
