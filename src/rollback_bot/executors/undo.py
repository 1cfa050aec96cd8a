"""What ``kubectl rollout undo`` means for a Deployment right now: decided, not applied.

One consistent read of the cluster becomes a ``Situation``: the target revision
(kubectl's choice), the revision running now, whether the template is already
the target's, and which ConfigMaps differ from the checkpoint taken while the
target ran. From it follow the JSON patch kubectl's end state needs (template
without ``pod-template-hash``, annotations carried as kubectl carries them) and
the lines a person reads in the plan. ``instant.InstantExecutor`` plans and
applies from this; the writing, retrying and confirming stay there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollback_bot.catalog import Service
from rollback_bot.executors.base import SnapshotStore
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.events import CHANGE_CAUSE
from rollback_bot.kube.model import ExecutionError
from rollback_bot.kube.revisions import (
    REVISION,
    REVISION_HISTORY,
    Revision,
    TargetError,
    choose_target,
    configmaps_referenced,
    same_template,
    strip_hash,
)
from rollback_bot.kube.snapshots import configmap_changes, differs, read_configmap

# kubectl's annotationsToSkip: bookkeeping of the Deployment itself, never
# carried over from the ReplicaSet (k8s.io/kubectl/pkg/polymorphichelpers/rollback.go).
ANNOTATIONS_TO_SKIP = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)


@dataclass
class Situation:
    """One consistent read of the cluster and what it means for the rollback."""

    deployment: dict[str, Any]
    revisions: list[Revision]
    target: Revision
    current: Revision | None
    at_target: bool
    configmaps: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    restores: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> checkpoint body

    @property
    def namespace(self) -> str:
        return str(self.deployment["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.deployment["metadata"]["name"])


def situation(
    apis: KubeApis,
    store: SnapshotStore,
    service: Service,
    deployment: dict[str, Any],
    revisions: list[Revision],
    *,
    to_revision: int | None,
    target_rs: str | None,
) -> Situation:
    """The situation after reading ``deployment`` and its ``revisions``.

    ``target_rs`` pins the target to the ReplicaSet chosen when the plan was
    made; otherwise kubectl's choice for ``to_revision`` (None: the previous one).
    """
    target = next((r for r in revisions if r.replicaset == target_rs), None) if target_rs else None
    if target is None:
        try:
            target = choose_target(revisions, service.deployment, to_revision)
        except TargetError as exc:
            raise ExecutionError(str(exc)) from None
    live = deployment["spec"]["template"]
    current = next((r for r in reversed(revisions) if same_template(r.template, live)), None)
    found = Situation(deployment, revisions, target, current, same_template(target.template, live))
    checkpoints = checkpoint_for(store, service, target)
    names = dict.fromkeys([*configmaps_referenced(live), *checkpoints])
    for name in names:
        found.configmaps[name] = read_configmap(apis, found.namespace, name)
    found.restores = {
        name: body
        for name, body in checkpoints.items()
        if differs(found.configmaps.get(name), body)
    }
    return found


def checkpoint_for(
    store: SnapshotStore, service: Service, target: Revision
) -> dict[str, dict[str, Any]]:
    """ConfigMaps recorded while the target ran, under its number now or any earlier one."""
    if not target.configmaps:
        return {}  # it ran with none: no checkpoint can hold one of its ConfigMaps
    history = target.annotations.get(REVISION_HISTORY, "")
    numbers = [target.number, *(int(n) for n in history.split(",") if n.strip().isdigit())]
    for number in numbers:
        found = store.configmaps_for_revision(
            namespace=service.namespace, deployment=service.deployment, revision=number
        )
        wanted = {k: v for k, v in found.items() if k in target.configmaps}
        if wanted:
            return wanted
    return {}


def configmap_lines(found: Situation) -> list[str]:
    """What restoring the checkpointed ConfigMaps changes, one line per key."""
    lines: list[str] = []
    for name, body in found.restores.items():
        lines += configmap_changes(name, found.configmaps.get(name), body)
    return lines


def rollback_annotations(
    deployment: Mapping[str, Any], target: Mapping[str, Any]
) -> dict[str, str]:
    """The Deployment's annotations after the rollback, computed as kubectl does."""
    live = deployment.get("metadata", {}).get("annotations") or {}
    carried = target.get("metadata", {}).get("annotations") or {}
    out = {k: v for k, v in live.items() if k in ANNOTATIONS_TO_SKIP}
    out.update({k: v for k, v in carried.items() if k not in ANNOTATIONS_TO_SKIP})
    return out


def undo_patch(found: Situation, cause: str | None = None) -> list[dict[str, Any]]:
    """The JSON patch to the target's template, refused (409) if the Deployment moved since.

    ``cause`` becomes ``kubernetes.io/change-cause`` (instead of the one the target
    revision carried), so ``kubectl rollout history`` says this rollback made the revision.
    """
    annotations = rollback_annotations(
        found.deployment, {"metadata": {"annotations": found.target.annotations}}
    )
    if cause:
        annotations[CHANGE_CAUSE] = cause
    return [
        {
            "op": "replace",
            "path": "/metadata/resourceVersion",
            "value": found.deployment["metadata"]["resourceVersion"],
        },
        {"op": "replace", "path": "/spec/template", "value": strip_hash(found.target.template)},
        {"op": "add", "path": "/metadata/annotations", "value": annotations},
    ]
