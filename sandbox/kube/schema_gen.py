"""Regenerate ``schema.json``: the field names of every type the emulator serves.

Read from the OpenAPI v3 documents in the Kubernetes module (Go's module cache after
``.ci/build-realk8s``), kept only as names and nesting, so the emulator can tell unknown
fields from known ones as the API server's strict decoder does::

    python -m sandbox.kube.schema_gen [$(go env GOMODCACHE)/k8s.io/kubernetes@v1.36.3]

Each type maps field -> "" (a scalar or free-form value), "T" (an object of type T),
"[]T" (a list of T) or "{}T" (a map of T).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .resources import RESOURCES

DOCUMENTS = (
    "api__v1_openapi.json",
    "apis__apps__v1_openapi.json",
    "apis__networking.k8s.io__v1_openapi.json",
    "apis__autoscaling__v1_openapi.json",
)
PREFIX = "#/components/schemas/"
OUT = Path(__file__).with_name("schema.json")
EXTRA_ROOTS = ("io.k8s.api.autoscaling.v1.Scale",)


def _ref(prop: dict[str, Any]) -> str | None:
    if "$ref" in prop:
        return str(prop["$ref"]).removeprefix(PREFIX)
    for option in prop.get("allOf") or []:
        if "$ref" in option:
            return str(option["$ref"]).removeprefix(PREFIX)
    return None


def _short(name: str) -> str:
    return name.removeprefix("io.k8s.api.").removeprefix("io.k8s.apimachinery.pkg.apis.")


def build(root: Path) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for doc in DOCUMENTS:
        data = json.loads((root / "api/openapi-spec/v3" / doc).read_text())
        schemas.update(data["components"]["schemas"])
    kinds = {f"{rt.api_version}/{rt.kind}" for rt in RESOURCES}
    roots = {
        name: f"{gvk[0]['group'] + '/' if gvk[0]['group'] else ''}{gvk[0]['version']}/"
        f"{gvk[0]['kind']}"
        for name, s in schemas.items()
        if (gvk := s.get("x-kubernetes-group-version-kind")) and len(gvk) == 1
    }
    kind_roots = {gvk: name for name, gvk in roots.items() if gvk in kinds}
    types: dict[str, dict[str, str]] = {}
    pending = [*kind_roots.values(), *EXTRA_ROOTS]
    while pending:
        name = pending.pop()
        if _short(name) in types:
            continue
        props = schemas[name].get("properties")
        if not props:
            continue
        fields: dict[str, str] = {}
        for field, prop in sorted(props.items()):
            target, shape = _ref(prop), ""
            if target is None and prop.get("type") == "array":
                target, shape = _ref(prop.get("items") or {}), "[]"
            if target is None and isinstance(prop.get("additionalProperties"), dict):
                target, shape = _ref(prop["additionalProperties"]), "{}"
            if target is not None and schemas.get(target, {}).get("properties"):
                fields[field] = shape + _short(target)
                pending.append(target)
            else:
                fields[field] = ""
        types[_short(name)] = fields
    return {"kinds": {gvk: _short(n) for gvk, n in sorted(kind_roots.items())}, "types": types}


def main(argv: list[str]) -> int:
    if argv:
        root = Path(argv[0])
    else:
        cache = subprocess.run(
            ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
        ).stdout.strip()
        root = Path(cache) / "k8s.io/kubernetes@v1.36.3"
    document = build(root)
    OUT.write_text(json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({len(document['types'])} types)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
