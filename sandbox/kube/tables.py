"""`meta.k8s.io/v1 Table` rendering for `kubectl get`.

kubectl asks the server for tables (`Accept: ...;as=Table`) and prints the columns it is
given, so the column names, order, priorities and cell formats mirror the API server's
built-in printers for each resource.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .controller import parse_time
from .selectors import selector_string

Column = tuple[str, str, int, str]  # name, type, priority, format
Row = list[Any]

_DESCRIPTIONS = {
    "Name": "Name must be unique within a namespace.",
    "Age": (
        "CreationTimestamp is a timestamp representing the server time "
        "when this object was created."
    ),
}


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _age(obj: dict[str, Any]) -> str:
    stamp = obj["metadata"].get("creationTimestamp")
    return human_duration(time.time() - parse_time(stamp)) if stamp else "<unknown>"


def _containers(spec: dict[str, Any]) -> tuple[str, str]:
    containers = spec.get("containers") or []
    return (
        ",".join(str(c.get("name", "")) for c in containers),
        ",".join(str(c.get("image", "")) for c in containers),
    )


def _workload_extras(obj: dict[str, Any]) -> Row:
    names, images = _containers(((obj["spec"].get("template") or {}).get("spec")) or {})
    return [names, images, selector_string(obj["spec"].get("selector")) or "<none>"]


def _deployment(obj: dict[str, Any]) -> Row:
    status = obj.get("status") or {}
    ready = f"{status.get('readyReplicas', 0)}/{obj['spec'].get('replicas', 0)}"
    return [
        obj["metadata"]["name"],
        ready,
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj),
        *_workload_extras(obj),
    ]


def _replicaset(obj: dict[str, Any]) -> Row:
    status = obj.get("status") or {}
    return [
        obj["metadata"]["name"],
        obj["spec"].get("replicas", 0),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj),
        *_workload_extras(obj),
    ]


def _pod(obj: dict[str, Any]) -> Row:
    status = obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len(obj["spec"].get("containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    reason = status.get("phase", "Pending")
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    for s in statuses:
        waiting = (s.get("state") or {}).get("waiting")
        if waiting:
            reason = waiting.get("reason", reason)
    if obj["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [
        obj["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        str(restarts),
        _age(obj),
        status.get("podIP", "<none>"),
        obj["spec"].get("nodeName", "<none>"),
        "<none>",
        "<none>",
    ]


def _service(obj: dict[str, Any]) -> Row:
    spec = obj.get("spec") or {}
    ports = ",".join(
        f"{p.get('port')}/{p.get('protocol', 'TCP')}"
        if not p.get("nodePort")
        else f"{p.get('port')}:{p.get('nodePort')}/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    )
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    external = ",".join(spec.get("externalIPs") or []) or (
        spec.get("externalName", "<none>") if spec.get("type") == "ExternalName" else "<none>"
    )
    return [
        obj["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "<none>"),
        external,
        ports or "<none>",
        _age(obj),
        selector or "<none>",
    ]


def _configmap(obj: dict[str, Any]) -> Row:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [obj["metadata"]["name"], count, _age(obj)]


def _namespace(obj: dict[str, Any]) -> Row:
    return [obj["metadata"]["name"], (obj.get("status") or {}).get("phase", "Active"), _age(obj)]


def _ingress(obj: dict[str, Any]) -> Row:
    spec = obj.get("spec") or {}
    hosts = ",".join(r.get("host", "*") for r in spec.get("rules") or []) or "*"
    ports = "80, 443" if spec.get("tls") else "80"
    return [
        obj["metadata"]["name"],
        spec.get("ingressClassName", "<none>"),
        hosts,
        "",
        ports,
        _age(obj),
    ]


def _event(obj: dict[str, Any]) -> Row:
    involved = obj.get("involvedObject") or {}
    last = (
        obj.get("lastTimestamp") or obj.get("eventTime") or obj["metadata"].get("creationTimestamp")
    )
    seen = (
        human_duration(time.time() - parse_time(last))
        if isinstance(last, str) and len(last) == 20
        else "<unknown>"
    )
    kind = str(involved.get("kind", "")).lower()
    return [
        seen,
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{kind}/{involved.get('name', '')}",
        obj.get("message", ""),
    ]


_WORKLOAD_EXTRA: list[Column] = [
    ("Containers", "string", 1, ""),
    ("Images", "string", 1, ""),
    ("Selector", "string", 1, ""),
]

PRINTERS: dict[str, tuple[list[Column], Callable[[dict[str, Any]], Row]]] = {
    "Deployment": (
        [
            ("Name", "string", 0, "name"),
            ("Ready", "string", 0, ""),
            ("Up-to-date", "integer", 0, ""),
            ("Available", "integer", 0, ""),
            ("Age", "string", 0, ""),
            *_WORKLOAD_EXTRA,
        ],
        _deployment,
    ),
    "ReplicaSet": (
        [
            ("Name", "string", 0, "name"),
            ("Desired", "integer", 0, ""),
            ("Current", "integer", 0, ""),
            ("Ready", "integer", 0, ""),
            ("Age", "string", 0, ""),
            *_WORKLOAD_EXTRA,
        ],
        _replicaset,
    ),
    "Pod": (
        [
            ("Name", "string", 0, "name"),
            ("Ready", "string", 0, ""),
            ("Status", "string", 0, ""),
            ("Restarts", "string", 0, ""),
            ("Age", "string", 0, ""),
            ("IP", "string", 1, ""),
            ("Node", "string", 1, ""),
            ("Nominated Node", "string", 1, ""),
            ("Readiness Gates", "string", 1, ""),
        ],
        _pod,
    ),
    "Service": (
        [
            ("Name", "string", 0, "name"),
            ("Type", "string", 0, ""),
            ("Cluster-IP", "string", 0, ""),
            ("External-IP", "string", 0, ""),
            ("Port(s)", "string", 0, ""),
            ("Age", "string", 0, ""),
            ("Selector", "string", 1, ""),
        ],
        _service,
    ),
    "ConfigMap": (
        [("Name", "string", 0, "name"), ("Data", "integer", 0, ""), ("Age", "string", 0, "")],
        _configmap,
    ),
    "Namespace": (
        [("Name", "string", 0, "name"), ("Status", "string", 0, ""), ("Age", "string", 0, "")],
        _namespace,
    ),
    "Ingress": (
        [
            ("Name", "string", 0, "name"),
            ("Class", "string", 0, ""),
            ("Hosts", "string", 0, ""),
            ("Address", "string", 0, ""),
            ("Ports", "string", 0, ""),
            ("Age", "string", 0, ""),
        ],
        _ingress,
    ),
    "Event": (
        [
            ("Last Seen", "string", 0, ""),
            ("Type", "string", 0, ""),
            ("Reason", "string", 0, ""),
            ("Object", "string", 0, ""),
            ("Message", "string", 0, ""),
        ],
        _event,
    ),
}


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def to_table(
    kind: str, objects: list[dict[str, Any]], resource_version: str, include: str
) -> dict[str, Any]:
    columns, printer = PRINTERS[kind]
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer(obj)}
        embedded = _row_object(obj, include)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": n,
                "type": t,
                "format": f,
                "description": _DESCRIPTIONS.get(n, n),
                "priority": p,
            }
            for n, t, p, f in columns
        ],
        "rows": rows,
    }
