"""Argo Rollouts: what a ``Rollout`` shows (steps, canary weight, analysis) and what
``kubectl argo rollouts abort`` and ``undo`` do, through the API.

* abort: ``{"status": {"abort": true}}`` as a merge patch on the ``status`` subresource (the
  plugin's own patch); the controller then shifts all traffic back to the stable ReplicaSet.
* undo: the pod template of a previous revision's ReplicaSet (found by its
  ``rollout.argoproj.io/revision`` annotation; without ``rollouts-pod-template-hash``, which
  the controller adds itself) copied into ``spec.template`` with a JSON patch that carries
  the ``resourceVersion`` it was decided on. With no revision given, the one before the
  current, as the plugin picks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from rollback_bot.kube.client import JSON_PATCH, MERGE_PATCH, KubeApis, explain, read_json
from rollback_bot.kube.model import Change, ExecutionError

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "rollouts"
REVISION = "rollout.argoproj.io/revision"
HASH = "rollouts-pod-template-hash"


def _custom(apis: KubeApis) -> k8s.CustomObjectsApi:
    return k8s.CustomObjectsApi(apis.api_client)


def _what(namespace: str, name: str) -> str:
    return f"rollout {namespace}/{name}"


def read_rollout(apis: KubeApis, namespace: str, name: str) -> dict[str, Any]:
    try:
        response = _custom(apis).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, _preload_content=False
        )
    except ApiException as exc:
        raise explain(exc, _what(namespace, name)) from exc
    return read_json(response)


def _revision_of(obj: dict[str, Any]) -> int | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def owned_replicasets(apis: KubeApis, rollout: dict[str, Any]) -> list[dict[str, Any]]:
    """The Rollout's ReplicaSets (by owner reference), newest revision first."""
    meta = rollout["metadata"]
    labels = ((rollout.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    try:
        response = apis.apps.list_namespaced_replica_set(
            meta["namespace"], label_selector=selector or None, _preload_content=False
        )
    except ApiException as exc:
        raise explain(exc, f"replicasets of {_what(meta['namespace'], meta['name'])}") from exc
    items = read_json(response).get("items") or []
    mine = [
        rs
        for rs in items
        if any(o.get("uid") == meta.get("uid") for o in rs["metadata"].get("ownerReferences") or [])
    ]
    return sorted(mine, key=lambda rs: _revision_of(rs) or 0, reverse=True)


@dataclass(frozen=True)
class RolloutStatus:
    """What the card and the preview show of a Rollout."""

    phase: str
    steps: tuple[str, ...]  # "setWeight 20", "pause 1m", "analysis success-rate"
    current_step: int | None  # index into steps
    canary_weight: int | None
    analysis: str | None  # "Running", "Successful", "Failed" (with its message)
    aborted: bool

    def lines(self) -> list[str]:
        out = [f"rollout phase: {self.phase}" + (" (aborted)" if self.aborted else "")]
        if self.steps:
            at = self.current_step
            shown = ", ".join(
                f"[{s}]" if at is not None and i == at else s for i, s in enumerate(self.steps)
            )
            total = len(self.steps)
            where = f"step {min(at + 1, total)}/{total}" if at is not None else "-"
            out.append(f"canary steps ({where}): {shown}")
        if self.canary_weight is not None:
            out.append(f"canary weight: {self.canary_weight}%")
        if self.analysis:
            out.append(f"analysis: {self.analysis}")
        return out


def _step_text(step: dict[str, Any]) -> str:
    if "setWeight" in step:
        return f"setWeight {step['setWeight']}"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause {duration}" if duration is not None else "pause (until promoted)"
    if "analysis" in step:
        names = [t.get("templateName", "?") for t in (step["analysis"] or {}).get("templates", [])]
        return "analysis " + ",".join(names)
    return next(iter(step), "step")


def rollout_status(rollout: dict[str, Any]) -> RolloutStatus:
    spec, status = rollout.get("spec") or {}, rollout.get("status") or {}
    steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or []
    index = status.get("currentStepIndex")
    canary = status.get("canary") or {}
    weight = (((canary.get("weights") or {}).get("canary")) or {}).get("weight")
    if weight is None and steps and index is not None:
        # No traffic router: the weight is the last setWeight reached.
        reached = [s["setWeight"] for s in steps[: index + 1] if "setWeight" in s]
        weight = reached[-1] if reached else None
    run = canary.get("currentStepAnalysisRunStatus") or canary.get(
        "currentBackgroundAnalysisRunStatus"
    )
    analysis = None
    if run:
        analysis = f"{run.get('status')} ({run.get('name')})" + (
            f": {run['message']}" if run.get("message") else ""
        )
    return RolloutStatus(
        phase=str(status.get("phase") or "Unknown"),
        steps=tuple(_step_text(s) for s in steps),
        current_step=int(index) if index is not None else None,
        canary_weight=int(weight) if weight is not None else None,
        analysis=analysis,
        aborted=bool(status.get("abort")),
    )


def abort(apis: KubeApis, namespace: str, name: str, *, dry_run: bool = False) -> Change:
    """``kubectl argo rollouts abort``: ``status.abort: true`` through the status subresource."""
    try:
        _custom(apis).patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": {"abort": True}},
            dry_run="All" if dry_run else None,
            _content_type=MERGE_PATCH,
            _preload_content=False,
        )
    except ApiException as exc:
        raise explain(exc, _what(namespace, name)) from exc
    summary = "aborted: traffic goes back to the stable ReplicaSet"
    return Change("patched", "Rollout", namespace, name, summary, dry_run)


def undo_target(
    replicasets: list[dict[str, Any]], to_revision: int | None
) -> tuple[int, dict[str, Any]]:
    """(revision, its ReplicaSet): ``to_revision``, else the one before the newest."""
    numbered = [(r, rs) for rs in replicasets if (r := _revision_of(rs)) is not None]
    if to_revision is None:
        if len(numbered) < 2:
            raise ExecutionError("the rollout has no previous revision to undo to")
        return numbered[1]
    for number, rs in numbered:
        if number == to_revision:
            return number, rs
    known = ", ".join(str(n) for n, _ in numbered) or "none"
    raise ExecutionError(f"the rollout has no revision {to_revision} (known: {known})")


def undo(
    apis: KubeApis,
    namespace: str,
    name: str,
    *,
    to_revision: int | None = None,
    dry_run: bool = False,
) -> tuple[int, Change]:
    """``kubectl argo rollouts undo``: a previous ReplicaSet's template into ``spec.template``."""
    rollout = read_rollout(apis, namespace, name)
    number, rs = undo_target(owned_replicasets(apis, rollout), to_revision)
    template = copy.deepcopy(rs["spec"]["template"])
    labels = (template.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH, None)
    ops = [
        {
            "op": "test",
            "path": "/metadata/resourceVersion",
            "value": rollout["metadata"]["resourceVersion"],
        },
        {"op": "replace", "path": "/spec/template", "value": template},
    ]
    try:
        _custom(apis).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            ops,
            dry_run="All" if dry_run else None,
            _content_type=JSON_PATCH,
            _preload_content=False,
        )
    except ApiException as exc:
        raise explain(exc, _what(namespace, name)) from exc
    images = ", ".join(
        c.get("image", "?") for c in (template.get("spec") or {}).get("containers", [])
    )
    summary = f"template of revision {number} ({images})"
    return number, Change("patched", "Rollout", namespace, name, summary, dry_run)
