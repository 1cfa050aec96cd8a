"""Who reconciles a workload from Git, and pausing and resuming that reconciliation.

A rollback made behind Argo CD's or Flux's back is undone by their next sync (self-heal,
or the next interval). Before rolling back, the bot finds the object that owns the
workload and pauses it with the tool's own field:

* Flux: ``spec.suspend: true`` on the ``Kustomization`` or ``HelmRelease`` named by the
  ``kustomize.toolkit.fluxcd.io/name|namespace`` or ``helm.toolkit.fluxcd.io/name|namespace``
  labels the controller puts on what it applies.
* Argo CD: ``spec.syncPolicy.automated`` (auto-sync, self-heal, prune) removed from the
  ``Application`` named by the ``argocd.argoproj.io/tracking-id`` annotation, or by the
  ``app.kubernetes.io/instance`` label (Argo CD's default tracking before 3.x) when an
  Application of that name exists, or declared in the catalog.

What the field held before is returned so that resuming restores it exactly (an absent
field is removed again, not set to false). Every write carries the ``resourceVersion`` it
was decided on (a JSON-patch ``test``), and a drill sends it with ``dryRun=All``: the
apiserver validates the patch against the CRD's schema and changes nothing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from rollback_bot.kube.client import JSON_PATCH, KubeApis, explain, read_json
from rollback_bot.kube.model import Change, ExecutionError

ARGO_TRACKING_ID = "argocd.argoproj.io/tracking-id"
ARGO_INSTANCE_LABEL = "app.kubernetes.io/instance"
FLUX_KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io/name", "kustomize.toolkit.fluxcd.io/namespace")
FLUX_HELMRELEASE = ("helm.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/namespace")

ARGOCD, FLUX = "argocd", "flux"
APPLICATION, KUSTOMIZATION, HELMRELEASE = "Application", "Kustomization", "HelmRelease"

#: kind -> (group, version, plural): the versions the current CRDs store.
RESOURCES: dict[str, tuple[str, str, str]] = {
    APPLICATION: ("argoproj.io", "v1alpha1", "applications"),
    KUSTOMIZATION: ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    HELMRELEASE: ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
}
_TOOL_NAMES = {ARGOCD: "Argo CD", FLUX: "Flux"}


@dataclass(frozen=True)
class Owner:
    """The GitOps object that reconciles a workload, and how that was found."""

    tool: str  # argocd | flux
    kind: str  # Application | Kustomization | HelmRelease
    namespace: str
    name: str
    via: str  # "annotation argocd.argoproj.io/tracking-id", "label ...", "catalog"

    @property
    def label(self) -> str:
        return f"{_TOOL_NAMES[self.tool]} {self.kind} {self.namespace}/{self.name}"

    @property
    def pause_text(self) -> str:
        """What pausing does, in the tool's own words."""
        if self.tool == FLUX:
            return "spec.suspend: true"
        return "automated sync and self-heal off (spec.syncPolicy.automated removed)"

    def to_dict(self) -> dict[str, str]:
        return {
            "tool": self.tool,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "via": self.via,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Owner:
        return cls(
            tool=str(data["tool"]),
            kind=str(data["kind"]),
            namespace=str(data["namespace"]),
            name=str(data["name"]),
            via=str(data.get("via", "")),
        )


def _custom(apis: KubeApis) -> k8s.CustomObjectsApi:
    return k8s.CustomObjectsApi(apis.api_client)


def read_owner_object(apis: KubeApis, owner: Owner) -> dict[str, Any] | None:
    """The Application / Kustomization / HelmRelease as JSON; None when it does not exist."""
    group, version, plural = RESOURCES[owner.kind]
    try:
        response = _custom(apis).get_namespaced_custom_object(
            group, version, owner.namespace, plural, owner.name, _preload_content=False
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise explain(exc, f"{owner.kind.lower()} {owner.namespace}/{owner.name}") from exc
    return read_json(response)


def _argo_app_from_tracking_id(value: str, argocd_namespace: str) -> tuple[str, str] | None:
    """``<app>:<group>/<kind>:<namespace>/<name>``; ``<app>`` is ``<ns>_<name>`` for an
    Application outside Argo CD's own namespace (applications in any namespace)."""
    app = value.split(":", 1)[0].strip()
    if not app:
        return None
    if "_" in app:
        namespace, _, name = app.partition("_")
        return namespace, name
    return argocd_namespace, app


def detect(
    apis: KubeApis,
    workload: dict[str, Any],
    *,
    argocd_namespace: str = "argocd",
    declared: tuple[str, str] | None = None,
) -> Owner | None:
    """Who reconciles ``workload`` from Git; None when nothing does.

    ``declared`` (Application name, namespace) comes from the catalog and wins. The
    ``app.kubernetes.io/instance`` label is common outside Argo CD (Helm sets it), so it
    counts only when an Application of that name exists in ``argocd_namespace``.
    """
    if declared is not None:
        return Owner(ARGOCD, APPLICATION, declared[1], declared[0], "catalog")
    meta = workload.get("metadata") or {}
    labels: dict[str, str] = meta.get("labels") or {}
    annotations: dict[str, str] = meta.get("annotations") or {}
    here = str(meta.get("namespace") or "default")
    for kind, (name_key, ns_key) in (
        (KUSTOMIZATION, FLUX_KUSTOMIZATION),
        (HELMRELEASE, FLUX_HELMRELEASE),
    ):
        if labels.get(name_key):
            return Owner(
                FLUX, kind, labels.get(ns_key) or here, labels[name_key], f"label {name_key}"
            )
    tracking = annotations.get(ARGO_TRACKING_ID)
    if tracking:
        found = _argo_app_from_tracking_id(tracking, argocd_namespace)
        if found is not None:
            return Owner(ARGOCD, APPLICATION, found[0], found[1], f"annotation {ARGO_TRACKING_ID}")
    instance = labels.get(ARGO_INSTANCE_LABEL)
    if instance:
        candidate = Owner(
            ARGOCD, APPLICATION, argocd_namespace, instance, f"label {ARGO_INSTANCE_LABEL}"
        )
        if read_owner_object(apis, candidate) is not None:
            return candidate
    return None


def reconciling(owner: Owner, obj: dict[str, Any]) -> bool:
    """Whether the tool would re-apply Git on its own right now."""
    spec = obj.get("spec") or {}
    if owner.tool == FLUX:
        return not bool(spec.get("suspend"))
    automated = (spec.get("syncPolicy") or {}).get("automated")
    # Argo CD 3 can keep the settings with ``enabled: false``: that is manual sync too.
    return isinstance(automated, dict) and automated.get("enabled", True) is not False


def previous_settings(owner: Owner, obj: dict[str, Any]) -> dict[str, Any]:
    """The fields pausing changes, as they are now (``present`` False: the field is absent)."""
    spec = obj.get("spec") or {}
    field = "suspend" if owner.tool == FLUX else "syncPolicy"
    return {
        "field": f"spec.{field}",
        "present": field in spec,
        "value": copy.deepcopy(spec.get(field)),
    }


def _what(owner: Owner) -> str:
    return f"{owner.kind.lower()} {owner.namespace}/{owner.name}"


def _patch(apis: KubeApis, owner: Owner, ops: list[dict[str, Any]], *, dry_run: bool) -> None:
    group, version, plural = RESOURCES[owner.kind]
    try:
        _custom(apis).patch_namespaced_custom_object(
            group,
            version,
            owner.namespace,
            plural,
            owner.name,
            ops,
            dry_run="All" if dry_run else None,
            _content_type=JSON_PATCH,
            _preload_content=False,
        )
    except ApiException as exc:
        raise explain(exc, _what(owner)) from exc


def _require(apis: KubeApis, owner: Owner) -> dict[str, Any]:
    obj = read_owner_object(apis, owner)
    if obj is None:
        raise ExecutionError(f"{owner.label} not found: cannot pause or resume its reconciliation")
    return obj


def pause(
    apis: KubeApis, owner: Owner, *, dry_run: bool = False
) -> tuple[dict[str, Any], Change | None]:
    """Stop ``owner`` reconciling; (previous settings, the change, or None if already paused)."""
    obj = _require(apis, owner)
    before = previous_settings(owner, obj)
    if not reconciling(owner, obj):
        return before, None
    rv = obj["metadata"]["resourceVersion"]
    test = {"op": "test", "path": "/metadata/resourceVersion", "value": rv}
    if owner.tool == FLUX:
        ops = [test, {"op": "add", "path": "/spec/suspend", "value": True}]
    else:
        ops = [test, {"op": "remove", "path": "/spec/syncPolicy/automated"}]
    _patch(apis, owner, ops, dry_run=dry_run)
    summary = f"reconciliation paused: {owner.pause_text}"
    return before, Change("patched", owner.kind, owner.namespace, owner.name, summary, dry_run)


def resume(
    apis: KubeApis, owner: Owner, previous: dict[str, Any], *, dry_run: bool = False
) -> Change:
    """Put back exactly what ``pause`` found: the same value, or no field at all."""
    obj = _require(apis, owner)
    field = "suspend" if owner.tool == FLUX else "syncPolicy"
    spec = obj.get("spec") or {}
    rv = obj["metadata"]["resourceVersion"]
    ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/resourceVersion", "value": rv}]
    if previous.get("present"):
        ops.append({"op": "add", "path": f"/spec/{field}", "value": previous.get("value")})
    elif field in spec:
        ops.append({"op": "remove", "path": f"/spec/{field}"})
    if len(ops) > 1:
        _patch(apis, owner, ops, dry_run=dry_run)
    shown = previous.get("value") if previous.get("present") else "(absent)"
    summary = f"reconciliation resumed: spec.{field} restored to {shown}"
    return Change("restored", owner.kind, owner.namespace, owner.name, summary, dry_run)
