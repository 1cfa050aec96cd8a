"""Pausing and resuming Argo CD and Flux reconciliation against the real apiserver, with the
tools' real CRDs (their schemas validate every object and every patch).

The controllers are not running; what the tests assert is the exact field each controller
reads: Flux's ``spec.suspend``, Argo CD's ``spec.syncPolicy.automated``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from rollback_bot.kube import argo_rollouts, gitops
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.model import ExecutionError
from sandbox.realk8s import RealControlPlane
from tests.support.backend import client_for, poll
from tests.support.gitops import install_crds
from tests.support.realk8s import unique_name

SYNC_POLICY = {
    "automated": {"prune": True, "selfHeal": True},
    "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
    "retry": {"limit": 3},
}


@pytest.fixture
def apis(real_control_plane: RealControlPlane) -> KubeApis:
    install_crds(real_control_plane)
    return KubeApis(client_for(real_control_plane, "admin"))


@pytest.fixture
def namespace(apis: KubeApis) -> Iterator[str]:
    name = unique_name("gitops")
    apis.core.create_namespace({"metadata": {"name": name}})  # type: ignore[arg-type]
    yield name
    apis.core.delete_namespace(name)


def custom(apis: KubeApis) -> k8s.CustomObjectsApi:
    return k8s.CustomObjectsApi(apis.api_client)


def create(apis: KubeApis, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    group, version, plural = gitops.RESOURCES[kind]
    full = {"apiVersion": f"{group}/{version}", "kind": kind, **body}
    created: dict[str, Any] = custom(apis).create_namespaced_custom_object(
        group, version, namespace, plural, full
    )
    return created


def get(apis: KubeApis, kind: str, namespace: str, name: str) -> dict[str, Any]:
    group, version, plural = gitops.RESOURCES[kind]
    found: dict[str, Any] = custom(apis).get_namespaced_custom_object(
        group, version, namespace, plural, name
    )
    return found


def kustomization(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "interval": "5m",
            "path": "./apps/shop",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "platform"},
            **spec,
        },
    }


def helmrelease(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "interval": "10m",
            "chart": {
                "spec": {
                    "chart": "shop",
                    "version": "1.2.3",
                    "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                }
            },
            **spec,
        },
    }


def application(name: str, sync_policy: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "project": "default",
        "source": {
            "repoURL": "https://git.example/platform.git",
            "path": "apps/shop",
            "targetRevision": "main",
        },
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
    }
    if sync_policy is not None:
        spec["syncPolicy"] = sync_policy
    return {"metadata": {"name": name}, "spec": spec}


def workload(
    namespace: str, *, labels: dict[str, str], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "labels": labels, "annotations": annotations}}


def test_flux_kustomization_found_by_its_labels_suspended_and_restored_to_absent(
    apis: KubeApis, namespace: str
) -> None:
    name = unique_name("apps")
    created = create(apis, gitops.KUSTOMIZATION, namespace, kustomization(name))
    owner = gitops.detect(
        apis,
        workload(
            "shop",
            labels={
                "kustomize.toolkit.fluxcd.io/name": name,
                "kustomize.toolkit.fluxcd.io/namespace": namespace,
            },
        ),
    )
    assert owner == gitops.Owner(
        "flux", "Kustomization", namespace, name, "label kustomize.toolkit.fluxcd.io/name"
    )

    previous, change = gitops.pause(apis, owner)
    assert previous == {"field": "spec.suspend", "present": False, "value": None}
    assert change is not None and change.kind == "Kustomization"
    paused = get(apis, gitops.KUSTOMIZATION, namespace, name)
    assert paused["spec"]["suspend"] is True
    assert not gitops.reconciling(owner, paused)

    # Pausing again (a retried step) changes nothing and reports nothing to resume.
    again, nothing = gitops.pause(apis, owner)
    assert nothing is None and again["value"] is True

    gitops.resume(apis, owner, previous)
    resumed = get(apis, gitops.KUSTOMIZATION, namespace, name)
    assert "suspend" not in resumed["spec"]
    assert resumed["spec"] == created["spec"]  # as created (with the CRD's defaults)


def test_flux_helmrelease_explicit_suspend_false_comes_back_as_false(
    apis: KubeApis, namespace: str
) -> None:
    name = unique_name("shop")
    create(apis, gitops.HELMRELEASE, namespace, helmrelease(name, suspend=False))
    owner = gitops.detect(
        apis,
        workload(
            namespace,  # no namespace label: the workload's own namespace
            labels={"helm.toolkit.fluxcd.io/name": name},
        ),
    )
    assert owner is not None and owner.kind == "HelmRelease" and owner.namespace == namespace
    previous, _ = gitops.pause(apis, owner)
    assert get(apis, gitops.HELMRELEASE, namespace, name)["spec"]["suspend"] is True
    gitops.resume(apis, owner, previous)
    assert get(apis, gitops.HELMRELEASE, namespace, name)["spec"]["suspend"] is False


def test_argocd_application_by_label_only_when_it_exists_then_paused_and_restored_exactly(
    apis: KubeApis, namespace: str
) -> None:
    name = unique_name("shop")
    labelled = workload("shop", labels={"app.kubernetes.io/instance": name})
    # Helm sets the same label: without an Application of that name it is not Argo CD's.
    assert gitops.detect(apis, labelled, argocd_namespace=namespace) is None

    create(apis, gitops.APPLICATION, namespace, application(name, copy.deepcopy(SYNC_POLICY)))
    owner = gitops.detect(apis, labelled, argocd_namespace=namespace)
    assert owner == gitops.Owner(
        "argocd", "Application", namespace, name, "label app.kubernetes.io/instance"
    )

    previous, change = gitops.pause(apis, owner)
    assert change is not None
    assert previous == {"field": "spec.syncPolicy", "present": True, "value": SYNC_POLICY}
    paused = get(apis, gitops.APPLICATION, namespace, name)
    # Auto-sync, self-heal and prune are off; everything else in syncPolicy stays.
    assert paused["spec"]["syncPolicy"] == {
        "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
        "retry": {"limit": 3},
    }
    assert not gitops.reconciling(owner, paused)

    gitops.resume(apis, owner, previous)
    assert get(apis, gitops.APPLICATION, namespace, name)["spec"]["syncPolicy"] == SYNC_POLICY


def test_argocd_application_by_tracking_annotation_including_apps_in_any_namespace(
    apis: KubeApis, namespace: str
) -> None:
    name = unique_name("web")
    create(apis, gitops.APPLICATION, namespace, application(name, {"automated": {}}))
    annotated = workload(
        "shop",
        labels={},
        annotations={
            "argocd.argoproj.io/tracking-id": f"{namespace}_{name}:apps/Deployment:shop/web"
        },
    )
    owner = gitops.detect(apis, annotated)
    assert owner is not None and (owner.namespace, owner.name) == (namespace, name)
    assert owner.via == "annotation argocd.argoproj.io/tracking-id"
    previous, _ = gitops.pause(apis, owner)
    assert get(apis, gitops.APPLICATION, namespace, name)["spec"].get("syncPolicy") in ({}, None)
    gitops.resume(apis, owner, previous)
    assert get(apis, gitops.APPLICATION, namespace, name)["spec"]["syncPolicy"] == {"automated": {}}


def test_a_drill_pause_is_a_server_side_dry_run_that_changes_nothing(
    apis: KubeApis, namespace: str
) -> None:
    name = unique_name("drill")
    create(apis, gitops.APPLICATION, namespace, application(name, copy.deepcopy(SYNC_POLICY)))
    before = get(apis, gitops.APPLICATION, namespace, name)
    owner = gitops.Owner("argocd", "Application", namespace, name, "catalog")
    _, change = gitops.pause(apis, owner, dry_run=True)
    assert change is not None and change.dry_run
    after = get(apis, gitops.APPLICATION, namespace, name)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"]["syncPolicy"] == SYNC_POLICY


def test_a_missing_owner_is_a_clear_error(apis: KubeApis, namespace: str) -> None:
    owner = gitops.Owner("flux", "Kustomization", namespace, "nope", "label x")
    with pytest.raises(ExecutionError, match=f"Flux Kustomization {namespace}/nope not found"):
        gitops.pause(apis, owner)


# -- Argo Rollouts ------------------------------------------------------------------------

ROLLOUT_STEPS = [
    {"setWeight": 20},
    {"pause": {"duration": "1m"}},
    {"analysis": {"templates": [{"templateName": "success-rate"}]}},
    {"setWeight": 60},
    {"pause": {}},
]


def _template(image: str, pod_hash: str | None = None) -> dict[str, Any]:
    labels = {"app": "checkout"}
    if pod_hash:
        labels[argo_rollouts.HASH] = pod_hash
    return {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def _rollout(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": _template(image),
            "strategy": {"canary": {"steps": ROLLOUT_STEPS}},
        },
    }


def _owned_replicaset(
    apis: KubeApis, namespace: str, rollout: dict[str, Any], revision: int, image: str
) -> None:
    """What the Rollouts controller would create for each revision (it does not run here)."""
    pod_hash = f"h{revision}abc"
    apis.apps.create_namespaced_replica_set(
        namespace,
        {  # type: ignore[arg-type]
            "metadata": {
                "name": f"{rollout['metadata']['name']}-{pod_hash}",
                "labels": {"app": "checkout", argo_rollouts.HASH: pod_hash},
                "annotations": {argo_rollouts.REVISION: str(revision)},
                "ownerReferences": [
                    {
                        "apiVersion": "argoproj.io/v1alpha1",
                        "kind": "Rollout",
                        "name": rollout["metadata"]["name"],
                        "uid": rollout["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "checkout", argo_rollouts.HASH: pod_hash}},
                "template": _template(image, pod_hash),
            },
        },
    )


def test_argo_rollout_status_abort_and_undo_as_the_kubectl_plugin_does(
    apis: KubeApis, namespace: str
) -> None:
    name = unique_name("checkout")
    api = custom(apis)
    rollout = api.create_namespaced_custom_object(
        "argoproj.io", "v1alpha1", namespace, "rollouts", _rollout(name, "shop/checkout:v2")
    )
    _owned_replicaset(apis, namespace, rollout, 1, "shop/checkout:v1")
    _owned_replicaset(apis, namespace, rollout, 2, "shop/checkout:v2")
    # Played here, as the controller would write it: at the analysis step, 20% on the canary.
    api.patch_namespaced_custom_object_status(
        "argoproj.io",
        "v1alpha1",
        namespace,
        "rollouts",
        name,
        {
            "status": {
                "phase": "Progressing",
                "currentStepIndex": 2,
                "canary": {
                    "currentStepAnalysisRunStatus": {
                        "name": f"{name}-h2abc-2",
                        "status": "Running",
                    }
                },
            }
        },
        _content_type="application/merge-patch+json",
    )
    seen = argo_rollouts.rollout_status(argo_rollouts.read_rollout(apis, namespace, name))
    assert seen.steps == (
        "setWeight 20",
        "pause 1m",
        "analysis success-rate",
        "setWeight 60",
        "pause (until promoted)",
    )
    assert (seen.current_step, seen.canary_weight, seen.phase) == (2, 20, "Progressing")
    assert seen.analysis == f"Running ({name}-h2abc-2)"
    assert "canary weight: 20%" in seen.lines()

    # A drill sends the abort as a dry run: nothing changes.
    argo_rollouts.abort(apis, namespace, name, dry_run=True)
    assert "abort" not in argo_rollouts.read_rollout(apis, namespace, name)["status"]

    before = argo_rollouts.read_rollout(apis, namespace, name)
    change = argo_rollouts.abort(apis, namespace, name)
    after = argo_rollouts.read_rollout(apis, namespace, name)
    assert change.kind == "Rollout"
    assert after["status"]["abort"] is True
    assert after["spec"] == before["spec"]  # the status subresource leaves spec alone

    number, undone = argo_rollouts.undo(apis, namespace, name)
    assert number == 1 and "shop/checkout:v1" in undone.summary
    template = argo_rollouts.read_rollout(apis, namespace, name)["spec"]["template"]
    # The previous ReplicaSet's template byte for byte (with the apiserver's defaults), less
    # the hash label the controller adds itself.
    rs1 = apis.apps.read_namespaced_replica_set(f"{name}-h1abc", namespace, _preload_content=False)
    expected = json.loads(rs1.data)["spec"]["template"]
    del expected["metadata"]["labels"][argo_rollouts.HASH]
    assert template == expected
    assert template["spec"]["containers"][0]["image"] == "shop/checkout:v1"
    assert template["metadata"]["labels"] == {"app": "checkout"}

    with pytest.raises(ExecutionError, match="no revision 7"):
        argo_rollouts.undo(apis, namespace, name, to_revision=7)


# -- the shipped Role (deploy/rbac/gitops.yaml) ---------------------------------------------

GITOPS_ROLE = Path(__file__).resolve().parents[2] / "deploy" / "rbac" / "gitops.yaml"


def _bind_gitops_role(apis: KubeApis, namespace: str, rules: list[dict[str, Any]]) -> None:
    rbac = k8s.RbacAuthorizationV1Api(apis.api_client)
    rbac.create_namespaced_role(
        namespace, {"metadata": {"name": "rollback-bot-gitops"}, "rules": rules}
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "rollback-bot-gitops"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "rollback-bot-gitops",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "rollback-bot"}
            ],
        },
    )


def test_the_shipped_gitops_role_is_enough_and_without_it_the_refusal_names_the_grant(
    real_control_plane: RealControlPlane, apis: KubeApis, namespace: str
) -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all(GITOPS_ROLE.read_text())}
    rules = docs["Role"]["rules"]
    assert docs["RoleBinding"]["roleRef"]["name"] == docs["Role"]["metadata"]["name"]
    flux, argo = unique_name("apps"), unique_name("shop")
    create(apis, gitops.KUSTOMIZATION, namespace, kustomization(flux))
    create(apis, gitops.APPLICATION, namespace, application(argo, copy.deepcopy(SYNC_POLICY)))
    rollout = custom(apis).create_namespaced_custom_object(
        "argoproj.io", "v1alpha1", namespace, "rollouts", _rollout("checkout", "shop/checkout:v2")
    )
    _owned_replicaset(apis, namespace, rollout, 1, "shop/checkout:v1")
    _owned_replicaset(apis, namespace, rollout, 2, "shop/checkout:v2")
    bot = KubeApis(client_for(real_control_plane, "rollback-bot"))
    owners = (
        gitops.Owner("flux", gitops.KUSTOMIZATION, namespace, flux, "label"),
        gitops.Owner("argocd", gitops.APPLICATION, namespace, argo, "label"),
    )

    # Without the Role: refused, and the refusal names the verb and resource to grant.
    with pytest.raises(ExecutionError, match="may not get kustomizations"):
        gitops.pause(bot, owners[0])
    with pytest.raises(ExecutionError, match=r"may not patch rollouts/status\.argoproj\.io"):
        argo_rollouts.abort(bot, namespace, "checkout")

    _bind_gitops_role(apis, namespace, rules)

    def granted() -> bool:
        try:
            gitops.read_owner_object(bot, owners[0])
        except ExecutionError:
            return False
        return True

    poll(granted, 30, 0.1)  # RBAC reaches the authorizer's cache within moments
    for owner in owners:
        previous, change = gitops.pause(bot, owner)
        assert change is not None
        gitops.resume(bot, owner, previous)
    argo_rollouts.abort(bot, namespace, "checkout")
    number, _ = argo_rollouts.undo(bot, namespace, "checkout")
    assert number == 1
    assert get(apis, gitops.APPLICATION, namespace, argo)["spec"]["syncPolicy"] == SYNC_POLICY
    assert "suspend" not in get(apis, gitops.KUSTOMIZATION, namespace, flux)["spec"]


class _Row:
    """The columns of a rollback row the pause step reads and writes."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.id, self.service, self.drill, self.plan = 9, "shop", False, plan


class _Recorder:
    def __init__(self, row: _Row) -> None:
        self.row = row
        self.kinds: list[str] = []

    def record(self, rollback_id: int, *, kind: str, summary: str, **kw: Any) -> None:
        self.kinds.append(kind)
        if kw.get("update"):
            kw["update"](self.row)


def test_a_pause_interrupted_after_storing_the_previous_settings_is_patched_again_not_recaptured(
    apis: KubeApis, namespace: str
) -> None:
    from rollback_bot.kube.model import Actor
    from rollback_bot.rollbacks.gitops import GITOPS, GitOpsPauser, pause_state

    name = unique_name("shop")
    create(apis, gitops.APPLICATION, namespace, application(name, copy.deepcopy(SYNC_POLICY)))
    owner = gitops.Owner("argocd", "Application", namespace, name, "catalog")
    row = _Row({"detail": {GITOPS: {"owner": owner.to_dict(), "reconciling": True}}})
    recorder = _Recorder(row)
    pauser = GitOpsPauser(apis)
    # The first attempt stored the previous settings, then the process died; meanwhile the
    # patch had landed (played here). The retry must keep what was stored.
    previous, _ = gitops.pause(apis, owner)
    row.plan["detail"]["gitops_pause"] = {"state": "pausing", "previous": previous}
    pauser.before_first_write(row, recorder, Actor("U0BOB"))  # type: ignore[arg-type]
    assert recorder.kinds == ["gitops.paused"]
    assert pause_state(row)["previous"]["value"] == SYNC_POLICY  # not the paused syncPolicy
    assert pause_state(row)["state"] == "paused"
    # Done once: a later step job does nothing.
    assert pauser.before_first_write(row, recorder, Actor("U0BOB")) is None  # type: ignore[arg-type]
    assert recorder.kinds == ["gitops.paused"]
