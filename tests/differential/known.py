"""The differences between the emulator and the real control plane the project accepts.

Each entry is a scenario name and why the difference does not matter for the bot. A
scenario listed here is expected to differ (it is reported as xfail with its diff); one
that stops differing fails, so this list cannot go stale. ``FOUND`` collects every diff of
a run, for ``--difference-table``.
"""

from __future__ import annotations

KNOWN: dict[str, str] = {
    "replicaset_names": (
        "Upstream hashes Go's spew dump of the PodTemplateSpec; the emulator hashes canonical "
        "JSON with the same FNV-32a and alphabet, so names have the same shape but another "
        "suffix. The bot and kubectl read ReplicaSet names and pod-template-hash labels from "
        "the API and never compute them."
    ),
    "kubectl_create_protobuf": (
        "The emulator decodes JSON and YAML bodies only; `kubectl create "
        "namespace|configmap|deployment|service|secret` send protobuf and get 400 "
        "`error decoding request body`. The bot uses the Python client (JSON); people "
        "use `kubectl apply -f` or `kubectl create -f` (JSON) against the emulator."
    ),
    "invalid_values": (
        "An unsupported strategy type is reported on field spec.strategy upstream and on "
        "spec.strategy.type here; both are 422 Invalid. The bot shows the API's message and "
        "never branches on the field path."
    ),
}

FOUND: dict[str, list[str]] = {}


def compare(real: object, emulator: object, path: str = "") -> list[str]:
    """Every leaf where the two normalised results differ, as ``path: real → emulator``."""
    if isinstance(real, dict) and isinstance(emulator, dict):
        out: list[str] = []
        for key in sorted(set(real) | set(emulator), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in real:
                out.append(f"{sub}: (absent) → {emulator[key]!r}")
            elif key not in emulator:
                out.append(f"{sub}: {real[key]!r} → (absent)")
            else:
                out.extend(compare(real[key], emulator[key], sub))
        return out
    if (
        isinstance(real, list)
        and isinstance(emulator, list)
        and len(real) == len(emulator)
        and any(isinstance(v, (dict, list)) for v in real)
    ):
        out = []
        for i, (a, b) in enumerate(zip(real, emulator, strict=True)):
            out.extend(compare(a, b, f"{path}[{i}]"))
        return out
    if real != emulator:
        return [f"{path}: {real!r} → {emulator!r}"]
    return []
