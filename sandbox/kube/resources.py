"""The resource types the emulator serves, and the discovery documents describing them.

kubectl resolves `deploy`, `rs` or `deployment.apps` purely from discovery, so every
type's plural, kind, short names, verbs and scope live in one table here and both the
router and the discovery endpoints read from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`deployments.apps`, as the API server names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_generation(self) -> bool:
        return self.kind in {"Deployment", "ReplicaSet", "Ingress"}


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",), (), ("status",)),
    ResourceType("", "v1", "pods", "pod", "Pod", True, ("po",), ("all",), ("status",)),
    ResourceType("", "v1", "services", "service", "Service", True, ("svc",), ("all",), ("status",)),
    ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
    ResourceType("", "v1", "events", "event", "Event", True, ("ev",)),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        True,
        ("deploy",),
        ("all",),
        ("status", "scale"),
    ),
    ResourceType(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        True,
        ("rs",),
        ("all",),
        ("status", "scale"),
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "ingress",
        "Ingress",
        True,
        ("ing",),
        (),
        ("status",),
    ),
    # Leader election: what client-go's leaderelection (and the bot's elector) lock on.
    ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
)

BY_PLURAL: dict[str, ResourceType] = {rt.plural: rt for rt in RESOURCES}
GROUP_VERSIONS: dict[str, str] = {
    "": "v1",
    "apps": "v1",
    "networking.k8s.io": "v1",
    "coordination.k8s.io": "v1",
}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    rt = BY_PLURAL.get(plural)
    if rt is None or rt.group != group or rt.version != version:
        return None
    return rt


def by_kind(kind: str) -> ResourceType | None:
    return next((rt for rt in RESOURCES if rt.kind == kind), None)


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_entry(group: str) -> dict[str, Any]:
    gv = {"groupVersion": f"{group}/{GROUP_VERSIONS[group]}", "version": GROUP_VERSIONS[group]}
    return {"name": group, "versions": [gv], "preferredVersion": gv}


def api_group_list() -> dict[str, Any]:
    groups = [_group_entry(g) for g in GROUP_VERSIONS if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> dict[str, Any] | None:
    if group not in GROUP_VERSIONS or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group)}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    if GROUP_VERSIONS.get(group) != version:
        return None
    entries: list[dict[str, Any]] = []
    for rt in RESOURCES:
        if rt.group != group:
            continue
        verbs = VERBS if rt.namespaced else [v for v in VERBS if v != "deletecollection"]
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": verbs,
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        entries.append(entry)
        for sub in rt.subresources:
            sub_entry: dict[str, Any] = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            }
            if sub == "scale":
                sub_entry.update(group="autoscaling", version="v1", kind="Scale")
            entries.append(sub_entry)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}
