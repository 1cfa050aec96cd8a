"""Checkpoints of what a rollback touches: the Deployment and its ConfigMaps.

Rolling back an image while leaving the configuration it was built against in
place is half a rollback: a ConfigMap edited alongside a bad release keeps
breaking the old pods too. So before every change the Deployment and every
ConfigMap its pod template references are recorded (``SnapshotStore``), and an
instant rollback puts back the ConfigMaps the target revision ran with.
Restores carry the ``resourceVersion`` they were decided on, so a concurrent
edit answers 409 instead of being silently overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from rollback_bot.kube.client import JSON_PATCH, KubeApis, explain, read_json
from rollback_bot.kube.model import Change, SnapshotRecord
from rollback_bot.kube.revisions import configmaps_referenced, revision_number
from rollback_bot.redaction import MARK, redact_text, secret_name

_KEPT_META = ("name", "namespace", "labels", "annotations", "resourceVersion", "uid")


def _trimmed(obj: Mapping[str, Any]) -> dict[str, Any]:
    # managedFields and status are noise in a checkpoint and can be large.
    meta = obj.get("metadata") or {}
    out = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    out["metadata"] = {k: meta[k] for k in _KEPT_META if k in meta}
    return out


def read_configmap(apis: KubeApis, namespace: str, name: str) -> dict[str, Any] | None:
    """The ConfigMap, or None when it does not exist."""
    try:
        response = apis.core.read_namespaced_config_map(name, namespace, _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise explain(exc, f"configmap {namespace}/{name}") from exc
    return read_json(response)


def snapshot_records(
    deployment: Mapping[str, Any], configmaps: Mapping[str, Mapping[str, Any] | None]
) -> list[SnapshotRecord]:
    """Records for the Deployment and the ConfigMaps its live template references.

    ``configmaps`` holds bodies already read (None: it does not exist); each is
    filed under the Deployment's current revision, the one it is live with.
    """
    meta = deployment["metadata"]
    namespace, revision = meta["namespace"], revision_number(deployment)
    records = [
        SnapshotRecord("deployment", namespace, meta["name"], revision, _trimmed(deployment))
    ]
    for name in configmaps_referenced(deployment["spec"]["template"]):
        body = configmaps.get(name)
        if body is not None:
            records.append(SnapshotRecord("configmap", namespace, name, revision, _trimmed(body)))
    return records


def _short(value: str | None, limit: int = 40) -> str:
    if value is None:
        return "(unset)"
    text = value.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _content(body: Mapping[str, Any] | None) -> dict[str, str]:
    if body is None:
        return {}
    merged = {k: str(v) for k, v in (body.get("data") or {}).items()}
    merged.update(
        {k: f"<binary {len(str(v))} b64>" for k, v in (body.get("binaryData") or {}).items()}
    )
    return merged


def configmap_changes(
    name: str, current: Mapping[str, Any] | None, target: Mapping[str, Any]
) -> list[str]:
    """Human lines, one per key that restoring ``target`` would change."""
    if current is None:
        return [f"configmap/{name}: recreated from checkpoint ({len(_content(target))} keys)"]
    now, then = _content(current), _content(target)
    return [
        f"configmap/{name} key {key}: {_shown(key, now.get(key))} -> {_shown(key, then.get(key))}"
        for key in sorted(set(now) | set(then))
        if now.get(key) != then.get(key)
    ]


def _shown(key: str, value: str | None) -> str:
    """A ConfigMap value as a person may see it: a secret-looking one only as changed."""
    if value is None:
        return _short(value)
    if secret_name(key) or redact_text(value) != value:
        return MARK
    return _short(value)


def differs(current: Mapping[str, Any] | None, target: Mapping[str, Any]) -> bool:
    if current is None:
        return True
    return (current.get("data") or {}) != (target.get("data") or {}) or (
        current.get("binaryData") or {}
    ) != (target.get("binaryData") or {})


def _restore_ops(current: Mapping[str, Any], target: Mapping[str, Any]) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = [
        {
            "op": "replace",
            "path": "/metadata/resourceVersion",
            "value": current["metadata"]["resourceVersion"],
        }
    ]
    for field in ("data", "binaryData"):
        wanted = target.get(field)
        if wanted:
            ops.append({"op": "add", "path": f"/{field}", "value": wanted})
        elif field in current:
            ops.append({"op": "remove", "path": f"/{field}"})
    return ops


def restore_configmap(
    apis: KubeApis,
    *,
    namespace: str,
    name: str,
    current: Mapping[str, Any] | None,
    target: Mapping[str, Any],
    dry_run: bool,
) -> Change:
    """Write ``target``'s data over the ConfigMap last read as ``current``.

    ``ApiException`` propagates: the caller decides whether a 409 means re-read
    and re-decide, and how to report a failure after earlier writes.
    """
    dry = "All" if dry_run else None
    if current is None:
        meta = target.get("metadata") or {}
        body = k8s.V1ConfigMap(
            api_version="v1",
            kind="ConfigMap",
            metadata=k8s.V1ObjectMeta(
                name=name, namespace=namespace, labels=meta.get("labels") or None
            ),
            data=target.get("data") or None,
            binary_data=target.get("binaryData") or None,
        )
        apis.core.create_namespaced_config_map(namespace, body, dry_run=dry, _preload_content=False)
        summary = "recreated from checkpoint"
    else:
        apis.core.patch_namespaced_config_map(
            name,
            namespace,
            _restore_ops(current, target),
            dry_run=dry,
            _content_type=JSON_PATCH,
            _preload_content=False,
        )
        summary = "; ".join(configmap_changes(name, current, target)) or "data restored"
    return Change("restored", "ConfigMap", namespace, name, summary, dry_run=dry_run)
