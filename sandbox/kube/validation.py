"""Field validation answering 422 `Invalid` with the API server's own wording.

Only the rules a caller of this project can plausibly break are checked: names,
label values, the Deployment/ReplicaSet selector-template contract, containers and
their images, Service ports, ConfigMap data. Each message matches the upstream text
so kubectl prints what it would print against a cluster.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import invalid
from .resources import ResourceType
from .selectors import selector_from_match_labels

_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)

Causes = list[tuple[str, str]]


def _go_map(value: Any) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(value.items()))
        return "map[string]string{" + inner + "}"
    return json.dumps(value)


def validate(rt: ResourceType, obj: dict[str, Any]) -> None:
    causes: Causes = []
    metadata = obj.get("metadata")
    name = str(metadata.get("name", "")) if isinstance(metadata, dict) else ""
    if not isinstance(metadata, dict):
        causes.append(("metadata", "Required value"))
    else:
        _check_metadata(rt, metadata, causes)
    check = _CHECKS.get(rt.kind)
    if check is not None and not causes:
        check(obj, causes)
    if causes:
        raise invalid(rt.kind, rt.group, name, causes)


def _check_metadata(rt: ResourceType, metadata: dict[str, Any], causes: Causes) -> None:
    name = metadata.get("name")
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif not isinstance(name, str) or len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        causes.append(("metadata.name", f'Invalid value: "{name}": {_SUBDOMAIN_MSG}'))
    elif rt.kind in ("Namespace", "Service") and not _DNS1123_LABEL.match(name):
        causes.append(("metadata.name", f'Invalid value: "{name}": {_LABEL_MSG}'))
    for field in ("labels", "annotations"):
        value = metadata.get(field)
        if value is not None and not (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            causes.append((f"metadata.{field}", "Invalid value: must be a map of strings"))
    labels = metadata.get("labels")
    if isinstance(labels, dict):
        _check_label_values("metadata.labels", labels, causes)


def _check_label_values(field: str, labels: dict[str, Any], causes: Causes) -> None:
    for value in labels.values():
        if isinstance(value, str) and (len(value) > 63 or not _LABEL_VALUE.match(value)):
            causes.append(
                (
                    field,
                    f'Invalid value: "{value}": a valid label must be an empty string or consist '
                    "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
                    "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                )
            )


def _check_pod_spec(prefix: str, spec: Any, causes: Causes) -> None:
    if not isinstance(spec, dict):
        causes.append((prefix, "Required value"))
        return
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        causes.append((f"{prefix}.containers", "Required value"))
        return
    seen: set[str] = set()
    for i, container in enumerate(containers):
        path = f"{prefix}.containers[{i}]"
        if not isinstance(container, dict):
            causes.append((path, "Invalid value: must be an object"))
            continue
        cname = container.get("name")
        if not cname:
            causes.append((f"{path}.name", "Required value"))
        elif not isinstance(cname, str) or not _DNS1123_LABEL.match(cname):
            causes.append((f"{path}.name", f'Invalid value: "{cname}": {_LABEL_MSG}'))
        elif cname in seen:
            causes.append((f"{path}.name", f'Duplicate value: "{cname}"'))
        else:
            seen.add(cname)
        image = container.get("image")
        if not isinstance(image, str) or not image.strip():
            causes.append((f"{path}.image", "Required value"))
    restart = spec.get("restartPolicy")
    if restart not in (None, "Always", "OnFailure", "Never"):
        causes.append(
            (
                f"{prefix}.restartPolicy",
                f'Unsupported value: "{restart}": supported values: "Always", "OnFailure", "Never"',
            )
        )


def _check_workload(obj: dict[str, Any], causes: Causes) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.append(("spec", "Required value"))
        return
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        causes.append(
            (
                "spec.replicas",
                f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0",
            )
        )
    selector = spec.get("selector")
    template = spec.get("template")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        causes.append(("spec.selector", "Required value"))
    if not isinstance(template, dict):
        causes.append(("spec.template", "Required value"))
        return
    labels = (template.get("metadata") or {}).get("labels") or {}
    has_selector = isinstance(selector, dict) and bool(
        selector.get("matchLabels") or selector.get("matchExpressions")
    )
    if has_selector and not selector_from_match_labels(selector)(labels):
        message = f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`"
        causes.append(("spec.template.metadata.labels", message))
    _check_pod_spec("spec.template.spec", template.get("spec"), causes)
    if isinstance(template.get("spec"), dict) and template["spec"].get("restartPolicy") not in (
        None,
        "Always",
    ):
        causes.append(
            (
                "spec.template.spec.restartPolicy",
                f'Unsupported value: "{template["spec"]["restartPolicy"]}": '
                'supported values: "Always"',
            )
        )
    for key in ("revisionHistoryLimit", "progressDeadlineSeconds", "minReadySeconds"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or value < 0):
            causes.append(
                (
                    f"spec.{key}",
                    f"Invalid value: {json.dumps(value)}: must be greater than or equal to 0",
                )
            )
    strategy = spec.get("strategy")
    if isinstance(strategy, dict) and strategy.get("type") not in (
        None,
        "RollingUpdate",
        "Recreate",
    ):
        causes.append(
            (
                "spec.strategy.type",
                f'Unsupported value: "{strategy.get("type")}": '
                'supported values: "Recreate", "RollingUpdate"',
            )
        )


def _check_pod(obj: dict[str, Any], causes: Causes) -> None:
    _check_pod_spec("spec", obj.get("spec"), causes)


def _check_service(obj: dict[str, Any], causes: Causes) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.append(("spec", "Required value"))
        return
    ports = spec.get("ports") or []
    if not ports and spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None":
        causes.append(("spec.ports", "Required value"))
    for i, port in enumerate(ports):
        number = port.get("port") if isinstance(port, dict) else None
        if not isinstance(number, int) or not 0 < number < 65536:
            causes.append(
                (
                    f"spec.ports[{i}].port",
                    f"Invalid value: {json.dumps(number)}: must be between 1 and 65535, inclusive",
                )
            )
    selector = spec.get("selector")
    if selector is not None and not isinstance(selector, dict):
        causes.append(("spec.selector", "Invalid value: must be a map of strings"))
    elif isinstance(selector, dict):
        _check_label_values("spec.selector", selector, causes)


def _check_configmap(obj: dict[str, Any], causes: Causes) -> None:
    data = obj.get("data")
    if data is not None and not (
        isinstance(data, dict) and all(isinstance(v, str) for v in data.values())
    ):
        causes.append(("data", "Invalid value: must be a map of strings"))


def _check_ingress(obj: dict[str, Any], causes: Causes) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.append(("spec", "Required value"))
        return
    if not spec.get("rules") and not spec.get("defaultBackend"):
        causes.append(
            ("spec.rules", "Required value: either `defaultBackend` or `rules` must be specified")
        )


_CHECKS = {
    "Deployment": _check_workload,
    "ReplicaSet": _check_workload,
    "Pod": _check_pod,
    "Service": _check_service,
    "ConfigMap": _check_configmap,
    "Ingress": _check_ingress,
}
