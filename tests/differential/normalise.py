"""What legitimately differs between two API servers, taken out before comparing.

uids, timestamps, resourceVersion values, managedFields, generated pod names and the
namespace (each scenario gets a fresh one) differ between any two clusters; everything
else a scenario returns is compared as is. ReplicaSet names are replaced by
``<deployment>-<hash:image>``: the pod-template-hash itself is compared by one scenario of
its own (``replicaset_names``), so the others say what they test.
"""

from __future__ import annotations

import re
from typing import Any

from .backends import Backend

VOLATILE_META = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "managedFields",
    "selfLink",
)
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"


def strip(obj: Any) -> Any:
    """A copy without the volatile metadata and timestamps, recursively."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key in VOLATILE_META or key.endswith("Time") or key == "startedAt":
                continue
            out[key] = strip(value)
        return out
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def conditions(deployment: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = (deployment.get("status") or {}).get("conditions") or []
    return sorted((c["type"], c["status"], c.get("reason", "")) for c in found)


def image_of(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def replicasets(backend: Backend, deployment: str) -> list[dict[str, Any]]:
    listing = backend.get(backend.ns_path("apps/v1", "replicasets"))
    assert listing is not None
    owned = [
        rs
        for rs in listing["items"]
        if any(r.get("name") == deployment for r in rs["metadata"].get("ownerReferences") or [])
    ]
    return sorted(owned, key=lambda rs: int(rs["metadata"]["annotations"].get(REVISION, "0")))


def rs_names(backend: Backend, deployment: str) -> dict[str, str]:
    """ReplicaSet names and pod-template-hash values -> placeholders naming the image."""
    names: dict[str, str] = {}
    for rs in replicasets(backend, deployment):
        names[rs["metadata"]["name"]] = f"{deployment}-<hash:{image_of(rs)}>"
        pod_hash = (rs["metadata"].get("labels") or {}).get("pod-template-hash")
        if pod_hash:
            names[pod_hash] = f"<hash:{image_of(rs)}>"
    return names


def rs_summary(backend: Backend, deployment: str) -> list[dict[str, Any]]:
    names = rs_names(backend, deployment)
    out: list[dict[str, Any]] = []
    for rs in replicasets(backend, deployment):
        annotations = dict(rs["metadata"].get("annotations") or {})
        labels = rs["metadata"].get("labels") or {}
        out.append(
            {
                "name": names[rs["metadata"]["name"]],
                "hash_label_is_name_suffix": rs["metadata"]["name"].endswith(
                    "-" + labels.get("pod-template-hash", "?")
                ),
                "image": image_of(rs),
                "replicas": rs["spec"].get("replicas"),
                "annotations": annotations,
                "owner": [
                    (r["kind"], r["name"], r.get("controller"))
                    for r in rs["metadata"].get("ownerReferences") or []
                ],
            }
        )
    return out


_AGE = re.compile(r"(?<![\w-])\d+(\.\d+)?(ms|s|m|h|d)(\d+s)?(?![\w-])")
_POD_SUFFIX = re.compile(r"(<hash:[^>]+>)-[a-z0-9]{5}\b")


def text(value: str, backend: Backend, names: dict[str, str] | None = None) -> str:
    """kubectl output with the namespace, ReplicaSet and pod names and ages normalised."""
    for real_name, placeholder in sorted((names or {}).items(), key=lambda kv: -len(kv[0])):
        value = value.replace(real_name, placeholder)
    value = value.replace(backend.namespace, "NS")
    value = _POD_SUFFIX.sub(r"\1-<pod>", value)
    value = _AGE.sub("<age>", value)
    return "\n".join(line.rstrip() for line in value.strip().splitlines())


def numbers(value: str) -> str:
    return re.sub(r"\d+", "N", value)


def status(response: Any) -> dict[str, Any]:
    """HTTP code, and the Status reason and code of an error body."""
    out: dict[str, Any] = {"http": response.status_code}
    try:
        body = response.json()
    except ValueError:
        return out
    if isinstance(body, dict) and body.get("kind") == "Status":
        out["reason"] = body.get("reason")
        out["status"] = body.get("status")
    return out
