"""check-config's rules for services that are Helm releases (``helm: {release, namespace}``).

A service is one kind of target: a Deployment (``deployment:``) or a Helm release
(``helm:``), never both and never neither; a Helm release is rolled back by ``helm
rollback`` (strategy ``helm``, set by default) in the service's namespace.
"""

from __future__ import annotations

from typing import Any


def helm_problems(here: str, svc: dict[str, Any]) -> list[str]:
    """What is wrong with the target of one raw service entry, as check-config words it."""
    helm = svc.get("helm")
    strategy = svc.get("strategy")
    if helm is None:
        if strategy == "helm":
            return [f"{here}.helm: required when strategy is helm"]
        return []  # a Deployment or a Rollout: loader's one-target check covers them
    problems = []
    if strategy is not None and strategy != "helm":
        problems.append(
            f"{here}.strategy: {strategy!r} cannot roll back a Helm release: it is rolled back "
            "with helm rollback; leave strategy out or set it to helm"
        )
    if isinstance(helm, dict):
        namespace, own = helm.get("namespace"), svc.get("namespace")
        if isinstance(namespace, str) and isinstance(own, str) and namespace != own:
            problems.append(
                f"{here}.helm.namespace: {namespace!r} differs from the service's namespace "
                f"{own!r}: give one of them, or the same value"
            )
    for key in ("blue_green", "gradual"):
        if svc.get(key) is not None:
            problems.append(f"{here}.{key}: not available for a Helm release")
    return problems
