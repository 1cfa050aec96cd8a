"""A Deployment's rollout history, read the way ``kubectl rollout history`` reads it.

Kubernetes keeps no history object: each revision is a ReplicaSet owned by the
Deployment, numbered by its ``deployment.kubernetes.io/revision`` annotation.
Rolling back to a revision re-numbers its ReplicaSet as the newest, so the
ReplicaSet name (derived from the template hash) is the stable identity and
the number is only where it sits in the history now.

Everything here except ``list_revisions`` and ``read_deployment`` is pure, so
the executor can reuse one read of the cluster for planning, previewing and
deciding.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException

from rollback_bot.kube.client import KubeApis, explain, read_json

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
HASH_LABEL = "pod-template-hash"
MIN_HISTORY = 3


@dataclass(frozen=True)
class Revision:
    number: int
    replicaset: str
    images: tuple[str, ...]
    created_at: datetime | None
    replicas: int
    ready: int
    template: dict[str, Any]  # the ReplicaSet's pod template, hash label included
    configmaps: tuple[str, ...]
    annotations: dict[str, str]
    # The release's stable name when it is not the template's pod-template-hash: a
    # StatefulSet's or DaemonSet's ControllerRevision (see kube/workloads.py).
    identity: str | None = None

    @property
    def image(self) -> str | None:
        return ", ".join(self.images) or None


#: One Deployment, by ``namespace`` and ``name`` (raw calls through ``KubeApis``).
DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def read_deployment(apis: KubeApis, namespace: str, name: str) -> dict[str, Any]:
    try:
        response = apis.get_raw(
            DEPLOYMENT_PATH,
            {"namespace": namespace, "name": name},
        )
    except ApiException as exc:
        raise explain(exc, f"deployment {namespace}/{name}") from exc
    return read_json(response)


def label_selector(selector: Mapping[str, Any]) -> str:
    """A ``LabelSelector`` object in the query-string form the list call takes."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def owned_replicasets(apis: KubeApis, deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
    """ReplicaSets the Deployment controls: one list by selector, filtered by owner UID."""
    meta = deployment["metadata"]
    namespace = meta["namespace"]
    try:
        response = apis.get_raw(
            "/apis/apps/v1/namespaces/{namespace}/replicasets",
            {"namespace": namespace},
            {"labelSelector": label_selector(deployment["spec"].get("selector") or {})},
        )
    except ApiException as exc:
        raise explain(exc, f"replicasets of deployment {namespace}/{meta['name']}") from exc
    items: list[dict[str, Any]] = read_json(response).get("items") or []
    return [rs for rs in items if _controlled_by(rs, meta.get("uid"))]


def _controlled_by(obj: Mapping[str, Any], uid: str | None) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("controller") and ref.get("uid") == uid for ref in refs)


def revision_number(obj: Mapping[str, Any]) -> int | None:
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(REVISION)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def configmaps_referenced(template: Mapping[str, Any]) -> tuple[str, ...]:
    """ConfigMaps a pod template reads: env, envFrom, volumes and projected volumes."""
    spec = template.get("spec") or {}
    names: list[str] = []
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    for container in containers:
        for env in container.get("env") or []:
            ref = ((env.get("valueFrom") or {}).get("configMapKeyRef") or {}).get("name")
            names.append(ref) if ref else None
        for source in container.get("envFrom") or []:
            ref = (source.get("configMapRef") or {}).get("name")
            names.append(ref) if ref else None
    for volume in spec.get("volumes") or []:
        ref = (volume.get("configMap") or {}).get("name")
        names.append(ref) if ref else None
        for source in (volume.get("projected") or {}).get("sources") or []:
            ref = (source.get("configMap") or {}).get("name")
            names.append(ref) if ref else None
    return tuple(dict.fromkeys(names))


def images_of(template: Mapping[str, Any]) -> tuple[str, ...]:
    containers = (template.get("spec") or {}).get("containers") or []
    return tuple(c.get("image", "") for c in containers)


def _parse_time(raw: str | None) -> datetime | None:
    if not raw:
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def to_revision(rs: Mapping[str, Any]) -> Revision | None:
    number = revision_number(rs)
    if number is None:
        return None
    template = rs.get("spec", {}).get("template") or {}
    status = rs.get("status") or {}
    meta = rs["metadata"]
    return Revision(
        number=number,
        replicaset=meta["name"],
        images=images_of(template),
        created_at=_parse_time(meta.get("creationTimestamp")),
        replicas=int(status.get("replicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        template=template,
        configmaps=configmaps_referenced(template),
        annotations=dict(meta.get("annotations") or {}),
    )


def revisions_from(replicasets: Iterable[Mapping[str, Any]]) -> list[Revision]:
    """Revisions, oldest first; ReplicaSets without a revision are skipped, as kubectl does."""
    found = [r for r in (to_revision(rs) for rs in replicasets) if r is not None]
    return sorted(found, key=lambda r: r.number)


def list_revisions(apis: KubeApis, namespace: str, deployment: str) -> list[Revision]:
    obj = read_deployment(apis, namespace, deployment)
    return revisions_from(owned_replicasets(apis, obj))


def current_of(revisions: Sequence[Revision]) -> Revision | None:
    """The live revision: the highest number (the controller always stamps the newest)."""
    return revisions[-1] if revisions else None


def current_revision(apis: KubeApis, namespace: str, deployment: str) -> Revision | None:
    return current_of(list_revisions(apis, namespace, deployment))


def strip_hash(template: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the template without the controller's ``pod-template-hash`` label."""
    out = copy.deepcopy(dict(template))
    labels = (out.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
    return out


def _normalized(value: Any) -> Any:
    # The API server treats a missing field, null, {} and [] alike; so does
    # kubectl's semantic equality. Compare on that basis.
    if isinstance(value, dict):
        cleaned = {k: _normalized(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def same_template(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """kubectl's ``equalIgnoreHash``: equal once the hash label is ignored."""
    return bool(_normalized(strip_hash(a)) == _normalized(strip_hash(b)))


class TargetError(Exception):
    """No revision to roll back to; the message is kubectl's."""


def choose_target(
    revisions: Sequence[Revision], deployment_name: str, to_revision: int | None
) -> Revision:
    """kubectl's choice: the named revision, or else the second-newest one."""
    if to_revision is not None and to_revision < 0:
        raise TargetError(f"unable to find specified revision {to_revision} in history")
    if to_revision:
        found = next((r for r in revisions if r.number == to_revision), None)
        if found is None:
            raise TargetError(f"unable to find specified revision {to_revision} in history")
        return found
    if len(revisions) < 2:
        raise TargetError(f'no rollout history found for deployment "{deployment_name}"')
    return revisions[-2]


def history_limit_warning(deployment: Mapping[str, Any]) -> str | None:
    limit = (deployment.get("spec") or {}).get("revisionHistoryLimit")
    if limit is not None and int(limit) < MIN_HISTORY:
        return (
            f"revisionHistoryLimit is {limit}: keep at least {MIN_HISTORY} stable versions "
            "so there is something to roll back to"
        )
    return None


def known_stable(
    revisions: Sequence[Revision],
    *,
    alert_times: Iterable[datetime],
    window: timedelta,
    now: datetime,
    live_since: Mapping[int, datetime] | None = None,
) -> list[int]:
    """Revision numbers known to be stable, oldest first.

    A revision is stable when its rollout succeeded and no alert fired within
    ``window`` after it went live. A superseded revision counts as rolled out
    when it stayed live for the whole window; the live one when all its
    replicas are ready and the window has passed. ``live_since`` overrides the
    ReplicaSet creation time (a re-used ReplicaSet went live again later than
    it was created; the caller knows when from its own records).
    """
    alerts = sorted(alert_times)
    starts = {r.number: (live_since or {}).get(r.number, r.created_at) for r in revisions}
    current = max((r.number for r in revisions), default=None)
    stable: list[int] = []
    for rev in sorted(revisions, key=lambda r: r.number):
        start = starts[rev.number]
        if start is None:
            continue
        if rev.number == current:
            end = now
            if rev.replicas == 0 or rev.ready < rev.replicas:
                continue
        else:  # live until the next revision (by number) went live
            later = [t for n, t in starts.items() if n > rev.number and t is not None]
            end = min(later, default=now)
        if end - start < window:
            continue
        if any(start <= t <= start + window for t in alerts):
            continue
        stable.append(rev.number)
    return stable
