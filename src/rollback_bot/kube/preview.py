"""What a rollback will change, in lines people read before they approve it.

Approvers decide in seconds during an incident; the preview puts in front of
them what actually differs between the live revision and the target (images,
environment, ConfigMaps), what stays (replicas, strategy), and what will
surprise them later: a GitOps controller that re-applies the bad version on
its next sync, a paused Deployment, too short a history. Pure functions over
objects already read, so ``plan`` costs no extra API calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollback_bot.kube.revisions import Revision, history_limit_warning
from rollback_bot.redaction import MARK, redact_text, secret_name

_GITOPS_PREFIXES: tuple[tuple[str, str], ...] = (
    ("argocd.argoproj.io/", "Argo CD"),
    ("kustomize.toolkit.fluxcd.io/", "Flux (Kustomization)"),
    ("helm.toolkit.fluxcd.io/", "Flux (HelmRelease)"),
)


@dataclass(frozen=True)
class Preview:
    changes: tuple[str, ...]
    warnings: tuple[str, ...]


def gitops_manager(deployment: Mapping[str, Any]) -> tuple[str, str] | None:
    """(tool, the key that shows it) when a GitOps controller manages the Deployment."""
    meta = deployment.get("metadata") or {}
    keys = [*sorted(meta.get("annotations") or {}), *sorted(meta.get("labels") or {})]
    for key in keys:
        for prefix, tool in _GITOPS_PREFIXES:
            if key.startswith(prefix):
                return tool, key
    return None


def gitops_warning(deployment: Mapping[str, Any]) -> str | None:
    found = gitops_manager(deployment)
    if found is None:
        return None
    tool, key = found
    return (
        f"managed by {tool} ({key}): the rollback will be undone by the next sync "
        "unless Git is reverted too (or auto-sync is paused)"
    )


def _containers(template: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    spec = template.get("spec") or {}
    return {c.get("name", ""): c for c in spec.get("containers") or []}


def _env_value(entry: Mapping[str, Any]) -> str:
    if "value" in entry:
        return str(entry["value"])
    source = entry.get("valueFrom") or {}
    for kind, ref in source.items():
        if isinstance(ref, Mapping):
            where = ref.get("name") or ref.get("fieldPath") or ref.get("resource") or ""
            key = ref.get("key")
            return f"<{kind} {where}{'/' + key if key else ''}>"
    return ""


def _env(container: Mapping[str, Any]) -> dict[str, str]:
    return {e["name"]: _env_value(e) for e in container.get("env") or [] if "name" in e}


def _env_from(container: Mapping[str, Any]) -> list[str]:
    out = []
    for source in container.get("envFrom") or []:
        for kind in ("configMapRef", "secretRef"):
            if kind in source:
                out.append(f"{kind.removesuffix('Ref')}/{source[kind].get('name', '')}")
    return out


def template_changes(current: Mapping[str, Any], target: Mapping[str, Any]) -> list[str]:
    """Image, env and envFrom differences, container by container."""
    lines: list[str] = []
    now, then = _containers(current), _containers(target)
    for name in sorted(set(now) | set(then)):
        a, b = now.get(name), then.get(name)
        if a is None or b is None:
            lines.append(f"container {name}: {'added' if a is None else 'removed'}")
            continue
        if a.get("image") != b.get("image"):
            lines.append(f"image ({name}): {a.get('image')} -> {b.get('image')}")
        env_a, env_b = _env(a), _env(b)
        for key in sorted(set(env_a) | set(env_b)):
            if env_a.get(key) != env_b.get(key):
                old, new = env_a.get(key, "(unset)"), env_b.get(key, "(unset)")
                if secret_name(key) or redact_text(old) != old or redact_text(new) != new:
                    # Say that a secret changed, never what it was or becomes.
                    old, new = (v if v == "(unset)" else MARK for v in (old, new))
                lines.append(f"env {key} ({name}): {old} -> {new}")
        if _env_from(a) != _env_from(b):
            lines.append(f"envFrom ({name}): {_env_from(a) or '-'} -> {_env_from(b) or '-'}")
    return lines


def _strategy(deployment: Mapping[str, Any]) -> str:
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    kind = strategy.get("type") or "RollingUpdate"
    rolling = strategy.get("rollingUpdate") or {}
    if kind == "RollingUpdate":
        surge = rolling.get("maxSurge", "25%")
        unavailable = rolling.get("maxUnavailable", "25%")
        return f"{kind} (maxSurge {surge}, maxUnavailable {unavailable})"
    return str(kind)


def build_preview(
    deployment: Mapping[str, Any],
    current: Revision | None,
    target: Revision,
    *,
    configmap_lines: Sequence[str] = (),
    extra_warnings: Sequence[str] = (),
) -> Preview:
    """The lines for ``Plan.changes`` and ``Plan.warnings``."""
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    live_template = spec.get("template") or {}
    from_label = f"revision {current.number}" if current else "the live template"
    changes = [f"template: {from_label} -> revision {target.number} ({target.replicaset})"]
    changes += template_changes(live_template, target.template)
    if current is not None and set(current.configmaps) != set(target.configmaps):
        changes.append(
            f"configmaps referenced: {', '.join(current.configmaps) or '-'} -> "
            f"{', '.join(target.configmaps) or '-'}"
        )
    changes += configmap_lines
    changes.append(
        f"replicas: {spec.get('replicas', 1)} desired, {status.get('readyReplicas', 0)} ready "
        "(unchanged by the rollback)"
    )
    changes.append(f"strategy: {_strategy(deployment)}")
    warnings = [w for w in (gitops_warning(deployment), history_limit_warning(deployment)) if w]
    if spec.get("paused"):
        warnings.append(
            "the Deployment is paused: a rollback is refused until it is resumed "
            "(kubectl rollout resume)"
        )
    warnings += extra_warnings
    return Preview(tuple(changes), tuple(warnings))
