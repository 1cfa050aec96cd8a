"""The three PATCH flavours the API server accepts: JSON patch, merge patch, strategic merge.

Strategic merge is what kubectl sends for `set image`, `apply` and `patch` by default; it
merges lists of named things (containers, env, ports) by key instead of replacing them,
and understands the `$patch`, `$retainKeys`, `$setElementOrder` and
`$deleteFromPrimitiveList` directives that kubectl's patch generator emits.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch

from .errors import ApiError, bad_request, unsupported_media_type

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

# Field name -> merge key, as declared by `patchMergeKey` tags in the Kubernetes types.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}


def apply_patch(content_type: str, original: dict[str, Any], body: bytes) -> dict[str, Any]:
    media = content_type.split(";")[0].strip().lower()
    try:
        patch = json.loads(body or b"null")
    except ValueError as exc:
        raise bad_request(f"error decoding patch: {exc}") from exc
    if media == JSON_PATCH:
        return _json_patch(original, patch)
    if media == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise bad_request("error decoding patch: patch must be a JSON object")
        return merge_patch(original, patch)
    if media == STRATEGIC_MERGE_PATCH:
        if not isinstance(patch, dict):
            raise bad_request("error decoding patch: patch must be a JSON object")
        return strategic_merge(original, patch)
    raise unsupported_media_type(content_type)


def _json_patch(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, list):
        raise bad_request("the server rejected our request due to an error in our request")
    try:
        result = jsonpatch.apply_patch(original, patch)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise ApiError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    except (TypeError, KeyError) as exc:
        raise bad_request(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    if not isinstance(result, dict):
        raise bad_request("the server rejected our request: patch result is not an object")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return _merge_map(copy.deepcopy(original), patch)


def _merge_map(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive == "delete":
        return {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(target.get(field), list):
                target[field] = [v for v in target[field] if v not in value]
            continue
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            merged = _merge_map(current if isinstance(current, dict) else {}, value)
            if value.get("$patch") == "delete":
                target.pop(key, None)
            else:
                target[key] = merged
        elif isinstance(value, list):
            target[key] = _merge_list(key, target.get(key), value)
        else:
            target[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        for key in list(target):
            if key not in retain:
                del target[key]
    for key, order in patch.items():
        if key.startswith("$setElementOrder/") and isinstance(
            target.get(key.split("/", 1)[1]), list
        ):
            field = key.split("/", 1)[1]
            target[field] = _reorder(field, target[field], order)
    return target


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict)), None)
        if sample is None:
            return None
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    current_list = current if isinstance(current, list) else []
    key = _merge_key(field, patch + current_list)
    if key is None or not all(isinstance(i, dict) for i in patch):
        if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
            return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
        return copy.deepcopy(patch)
    if any(i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if "$patch" not in i]
    result = [copy.deepcopy(i) for i in current_list]
    for item in patch:
        match = next(
            (r for r in result if isinstance(r, dict) and r.get(key) == item.get(key)), None
        )
        if item.get("$patch") == "delete":
            result = [
                r for r in result if not (isinstance(r, dict) and r.get(key) == item.get(key))
            ]
        elif match is not None:
            merged = _merge_map(match, item)
            result[result.index(match)] = merged
        else:
            result.append(_merge_map({}, item))
    return result


def _reorder(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    key = _merge_key(field, order + items)
    if key is None:
        return items
    rank = {(o.get(key) if isinstance(o, dict) else o): i for i, o in enumerate(order)}
    return sorted(
        items,
        key=lambda i: rank.get(i.get(key) if isinstance(i, dict) else i, len(rank)),
    )
