"""A minimal OpenAPI v3 surface: enough for kubectl to choose server-side validation.

`kubectl apply` refuses to run when it can download no schema at all. With these
documents it finds the `fieldValidation` query parameter on each type's PATCH
operation, so it leaves validation to the server (which answers 422 as upstream does)
and computes strategic merge patches from its compiled-in type information. The
component schemas are deliberately empty: kubectl then uses those built-in types.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import GROUP_VERSIONS, RESOURCES

_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force")


def _gv_path(group: str) -> str:
    return f"api/{GROUP_VERSIONS[group]}" if not group else f"apis/{group}/{GROUP_VERSIONS[group]}"


def group_version_doc(group: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for rt in RESOURCES:
        if rt.group != group:
            continue
        scope = "/namespaces/{namespace}" if rt.namespaced else ""
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        params = [
            {"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for p in _QUERY_PARAMS
        ]
        paths[f"/{_gv_path(group)}{scope}/{rt.plural}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{rt.kind}",
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def _hash(doc: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()[:128]


def root_doc() -> dict[str, Any]:
    return {
        "paths": {
            _gv_path(group): {
                "serverRelativeURL": (
                    f"/openapi/v3/{_gv_path(group)}?hash={_hash(group_version_doc(group))}"
                )
            }
            for group in GROUP_VERSIONS
        }
    }


def lookup(path_parts: list[str]) -> dict[str, Any] | None:
    """Answer `/openapi/v3` and `/openapi/v3/<gv path>`; None for anything else."""
    if path_parts == ["openapi", "v3"]:
        return root_doc()
    rest = "/".join(path_parts[2:])
    for group in GROUP_VERSIONS:
        if rest == _gv_path(group):
            return group_version_doc(group)
    return None
