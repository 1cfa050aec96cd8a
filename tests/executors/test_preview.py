"""The impact preview: what approvers read before a rollback."""

from __future__ import annotations

from typing import Any

import pytest

from rollback_bot.kube.preview import (
    build_preview,
    gitops_manager,
    gitops_warning,
    template_changes,
)
from rollback_bot.kube.revisions import Revision, to_revision

# Not yet on the real control plane: kept on the emulator until converted.
pytestmark = pytest.mark.emulator_only


def template(image: str, env: dict[str, str], cm: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "env": [{"name": k, "value": v} for k, v in env.items()],
    }
    if cm:
        container["envFrom"] = [{"configMapRef": {"name": cm}}]
    return {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [container]}}


def revision(number: int, tpl: dict[str, Any]) -> Revision:
    rs = {
        "metadata": {
            "name": f"x-{number}",
            "annotations": {"deployment.kubernetes.io/revision": str(number)},
        },
        "spec": {"template": tpl},
    }
    found = to_revision(rs)
    assert found is not None
    return found


def deployment(tpl: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "x", "namespace": "shop", **meta},
        "spec": {"replicas": 3, "template": tpl, "strategy": {"type": "Recreate"}},
        "status": {"readyReplicas": 2},
    }


def test_template_changes_list_image_env_and_envfrom() -> None:
    now = template("a:v2", {"MODE": "fast", "NEW": "1"}, cm="cfg-v2")
    then = template("a:v1", {"MODE": "safe"}, cm="cfg-v1")
    assert template_changes(now, then) == [
        "image (app): a:v2 -> a:v1",
        "env MODE (app): fast -> safe",
        "env NEW (app): 1 -> (unset)",
        "envFrom (app): ['configMap/cfg-v2'] -> ['configMap/cfg-v1']",
    ]


def test_preview_lines_and_warnings() -> None:
    now, then = template("a:v2", {}, cm="cfg-v2"), template("a:v1", {}, cm="cfg-v1")
    preview = build_preview(
        deployment(now),
        revision(2, now),
        revision(1, then),
        configmap_lines=["configmap/cfg-v1 key K: 2 -> 1"],
    )
    assert preview.changes[0] == "template: revision 2 -> revision 1 (x-1)"
    assert "image (app): a:v2 -> a:v1" in preview.changes
    assert "configmaps referenced: cfg-v2 -> cfg-v1" in preview.changes
    assert "configmap/cfg-v1 key K: 2 -> 1" in preview.changes
    assert "replicas: 3 desired, 2 ready (unchanged by the rollback)" in preview.changes
    assert "strategy: Recreate" in preview.changes
    assert preview.warnings == ()


def test_paused_and_short_history_are_warned() -> None:
    tpl = template("a:v1", {})
    dep = deployment(tpl)
    dep["spec"].update(paused=True, revisionHistoryLimit=1)
    warnings = build_preview(dep, None, revision(1, tpl)).warnings
    assert any("paused" in w for w in warnings)
    assert any("revisionHistoryLimit is 1" in w for w in warnings)


@pytest.mark.parametrize(
    ("meta", "tool"),
    [
        (
            {"annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/x"}},
            "Argo CD",
        ),
        ({"labels": {"argocd.argoproj.io/instance": "shop"}}, "Argo CD"),
        ({"labels": {"kustomize.toolkit.fluxcd.io/name": "apps"}}, "Flux (Kustomization)"),
        ({"labels": {"helm.toolkit.fluxcd.io/name": "x"}}, "Flux (HelmRelease)"),
    ],
)
def test_gitops_managed_deployments_are_warned(meta: dict[str, Any], tool: str) -> None:
    dep = deployment(template("a:v1", {}), **meta)
    found = gitops_manager(dep)
    assert found is not None and found[0] == tool
    assert "undone by the next sync unless Git is reverted" in (gitops_warning(dep) or "")


def test_helm_instance_label_alone_is_not_gitops() -> None:
    dep = deployment(template("a:v1", {}), labels={"app.kubernetes.io/instance": "x"})
    assert gitops_warning(dep) is None
