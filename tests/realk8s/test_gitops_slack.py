"""Rolling back a Deployment that Flux or Argo CD reconciles, from Slack, on the real apiserver
with the tools' real CRDs: requested and approved over signed HTTP, reconciliation paused
before the Deployment is written (recorded on the row and the timeline), the Deployment
rolled back by the real controller-manager, and "Resume GitOps" restoring exactly what was
there before.

Neither Flux's nor Argo CD's controller runs here. What they would do with a paused object is
nothing; what they read is asserted field by field.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import utils

from rollback_bot.kube import argo_rollouts, gitops
from rollback_bot.kube.client import KubeApis
from rollback_bot.rollbacks.gitops import PAUSE, pause_state
from rollback_bot.slack.ui import action_ids
from sandbox.realk8s import RealControlPlane
from sandbox.stack import LoopbackStack, deployment_manifest, wait_until
from tests.e2e.conftest import FAST_SLACK
from tests.e2e.execute_support import (
    ALICE,
    BOB,
    CHANNEL,
    click,
    command_reply,
    events,
    open_modal,
    request,
    rollback,
    said,
    wait_state,
)
from tests.support.backend import RealBackend, client_for
from tests.support.gitops import install_crds
from tests.support.realk8s import unique_name

WAIT = 90.0
SYNC_POLICY = {
    "automated": {"prune": True, "selfHeal": True},
    "syncOptions": ["CreateNamespace=true"],
}


class _RealKube:
    """What ``LoopbackStack`` asks of its Kubernetes: here the real control plane."""

    def __init__(self, plane: RealControlPlane) -> None:
        self.plane = plane
        self.backend = RealBackend(plane)

    def start(self) -> _RealKube:
        return self

    def stop(self) -> None:
        self.backend.close()

    def api_client(self) -> k8s.ApiClient:
        return client_for(self.plane, "admin")

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.backend.get(resource, namespace, name)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        self.backend.wait_for(predicate, timeout)


class RealStack(LoopbackStack):
    def __init__(self, plane: RealControlPlane, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kube = _RealKube(plane)  # type: ignore[assignment]


def _service(name: str, namespace: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "deployment": name,
        "environment": "staging",
        "channel": CHANNEL,
        "match": {"service": name},
        "policy": {
            "requesters": {"users": [ALICE]},
            "approvers": {"users": [BOB]},
            "approvals": 1,
        },
        "health": {"timeout_seconds": 60, "wait_seconds": 0},
        "stable_window_seconds": 0,
        **extra,
    }


def _custom(apis: KubeApis, kind: str, namespace: str, body: dict[str, Any]) -> None:
    group, version, plural = gitops.RESOURCES[kind]
    k8s.CustomObjectsApi(apis.api_client).create_namespaced_custom_object(
        group,
        version,
        namespace,
        plural,
        {"apiVersion": f"{group}/{version}", "kind": kind, **body},
    )


def _read(apis: KubeApis, kind: str, namespace: str, name: str) -> dict[str, Any]:
    group, version, plural = gitops.RESOURCES[kind]
    found: dict[str, Any] = k8s.CustomObjectsApi(apis.api_client).get_namespaced_custom_object(
        group, version, namespace, plural, name
    )
    return found


def _application(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://git.example/p.git",
                "path": "a",
                "targetRevision": "main",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
            "syncPolicy": copy.deepcopy(SYNC_POLICY),
        },
    }


def _kustomization(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "interval": "5m",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "platform"},
        },
    }


def _image(apis: KubeApis, namespace: str, name: str) -> str:
    dep = apis.apps.read_namespaced_deployment(name, namespace)
    return str(dep.spec.template.spec.containers[0].image)


def _revision(apis: KubeApis, namespace: str, name: str) -> str | None:
    dep = apis.apps.read_namespaced_deployment(name, namespace)
    return (dep.metadata.annotations or {}).get("deployment.kubernetes.io/revision")


@pytest.fixture
def plane(real_control_plane: RealControlPlane) -> RealControlPlane:
    install_crds(real_control_plane)
    return real_control_plane


@pytest.fixture
def admin(plane: RealControlPlane) -> KubeApis:
    return KubeApis(client_for(plane, "admin"))


@pytest.fixture
def namespaces(admin: KubeApis) -> Iterator[Callable[[str], str]]:
    made: list[str] = []

    def make(prefix: str) -> str:
        name = unique_name(prefix)
        admin.core.create_namespace({"metadata": {"name": name}})  # type: ignore[arg-type]
        made.append(name)
        return name

    yield make
    for name in made:
        admin.core.delete_namespace(name)


def _release(admin: KubeApis, namespace: str, name: str, meta: dict[str, Any]) -> None:
    """v1 (good, settled), then v2: two revisions, so v1 is the target."""
    manifest = deployment_manifest(name, f"registry.local/{name}:v1")
    manifest["metadata"].setdefault("labels", {}).update(meta.get("labels", {}))
    manifest["metadata"]["annotations"] = dict(meta.get("annotations", {}))
    utils.create_from_dict(admin.api_client, manifest, namespace=namespace)
    wait_until(lambda: _revision(admin, namespace, name) == "1", timeout=WAIT)
    admin.apps.patch_namespaced_deployment(
        name,
        namespace,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "app", "image": f"registry.local/{name}:v2"}]}
                }
            }
        },
    )
    wait_until(lambda: _revision(admin, namespace, name) == "2", timeout=WAIT)


CASES = ("flux-kustomization", "argocd-label", "argocd-annotation")


@pytest.mark.parametrize("case", CASES)
def test_rollback_from_slack_pauses_gitops_and_resume_restores_it_exactly(
    case: str,
    plane: RealControlPlane,
    admin: KubeApis,
    namespaces: Callable[[str], str],
    migrated_url: str,
) -> None:
    app_ns = namespaces("shop")
    tool_ns = namespaces("flux" if case.startswith("flux") else "argocd")
    owner_name = unique_name("apps")
    service = "api"
    extra: dict[str, Any] = {}
    if case == "flux-kustomization":
        kind = gitops.KUSTOMIZATION
        _custom(admin, kind, tool_ns, _kustomization(owner_name))
        meta = {
            "labels": {
                "kustomize.toolkit.fluxcd.io/name": owner_name,
                "kustomize.toolkit.fluxcd.io/namespace": tool_ns,
            }
        }
    else:
        kind = gitops.APPLICATION
        _custom(admin, kind, tool_ns, _application(owner_name))
        extra = {"gitops": {"argocd_namespace": tool_ns}}
        if case == "argocd-label":
            meta = {"labels": {"app.kubernetes.io/instance": owner_name}}
        else:
            tracking = f"{owner_name}:apps/Deployment:{app_ns}/{service}"
            meta = {"annotations": {"argocd.argoproj.io/tracking-id": tracking}}
    before = _read(admin, kind, tool_ns, owner_name)["spec"]
    _release(admin, app_ns, service, meta)

    with RealStack(
        plane,
        slack_channel_rate=FAST_SLACK,
        catalog={"services": [_service(service, app_ns, **extra)]},
        database_url=migrated_url,
    ) as stack:
        modal = open_modal(stack, service)
        shown = str(modal)
        assert "the bot pauses it before rolling back" in shown
        assert owner_name in shown and "Resume GitOps" in shown

        rollback_id = request(stack, service)
        wait_state(stack, rollback_id, "requested")
        # Approval has not paused anything yet.
        assert _read(admin, kind, tool_ns, owner_name)["spec"] == before
        click(stack, action_ids.APPROVE, user=BOB)
        row = wait_until(
            lambda: (
                rollback(stack, rollback_id).state in ("done", "failed")
                and rollback(stack, rollback_id)
            ),
            timeout=WAIT,
        )
        assert row.state == "done", [e.summary for e in events(stack, rollback_id)]
        assert _image(admin, app_ns, service) == f"registry.local/{service}:v1"

        paused = _read(admin, kind, tool_ns, owner_name)["spec"]
        if kind == gitops.KUSTOMIZATION:
            assert paused == {**before, "suspend": True}
        else:
            assert paused["syncPolicy"] == {"syncOptions": ["CreateNamespace=true"]}
            assert {k: v for k, v in paused.items() if k != "syncPolicy"} == {
                k: v for k, v in before.items() if k != "syncPolicy"
            }
        kinds = [e.kind for e in events(stack, rollback_id)]
        # Stored before the patch, paused before the Deployment was written.
        assert kinds.index("gitops.pausing") < kinds.index("gitops.paused")
        assert kinds.index("gitops.paused") < kinds.index("kube.changed")
        state = pause_state(row)
        assert state["state"] == "paused"
        field = "suspend" if kind == gitops.KUSTOMIZATION else "syncPolicy"
        assert state["previous"] == {
            "field": f"spec.{field}",
            "present": field in before,
            "value": before.get(field),
        }
        said(stack, "so that the rollback holds")

        # Someone who may not operate this service's rollbacks is refused.
        click(stack, action_ids.RESUME_GITOPS, user="U0MALLORY")
        wait_until(
            lambda: any(
                e.kind == "rollback.refused" and "refused resume gitops by U0MALLORY" in e.summary
                for e in events(stack, rollback_id)
            ),
            timeout=WAIT,
        )
        assert _read(admin, kind, tool_ns, owner_name)["spec"] == paused

        if case == "argocd-annotation":  # the verb, where the others click the button
            assert "resumed" in command_reply(stack, f"resume-gitops R-{rollback_id}")
        else:
            click(stack, action_ids.RESUME_GITOPS, user=ALICE)
        wait_until(
            lambda: pause_state(rollback(stack, rollback_id)).get("state") == "resumed",
            timeout=WAIT,
        )
        assert _read(admin, kind, tool_ns, owner_name)["spec"] == before
        resumed = [e for e in events(stack, rollback_id) if e.kind == "gitops.resumed"]
        assert len(resumed) == 1 and resumed[0].actor == ALICE
        assert PAUSE in rollback(stack, rollback_id).plan["detail"]


def _flux_service(
    admin: KubeApis, namespaces: Callable[[str], str], **gitops_settings: Any
) -> tuple[dict[str, Any], str, str, dict[str, Any]]:
    """A Flux-managed Deployment with two revisions: (service, its namespace, the
    Kustomization's namespace and name, its spec as created)."""
    app_ns, flux_ns, name = namespaces("shop"), namespaces("flux"), unique_name("apps")
    _custom(admin, gitops.KUSTOMIZATION, flux_ns, _kustomization(name))
    labels = {
        "kustomize.toolkit.fluxcd.io/name": name,
        "kustomize.toolkit.fluxcd.io/namespace": flux_ns,
    }
    _release(admin, app_ns, "api", {"labels": labels})
    extra = {"gitops": gitops_settings} if gitops_settings else {}
    before = _read(admin, gitops.KUSTOMIZATION, flux_ns, name)
    return _service("api", app_ns, **extra), flux_ns, name, before


def test_a_drill_shows_the_pause_as_a_dry_run_and_makes_none(
    plane: RealControlPlane,
    admin: KubeApis,
    namespaces: Callable[[str], str],
    migrated_url: str,
) -> None:
    service, flux_ns, name, before = _flux_service(admin, namespaces)
    with RealStack(
        plane,
        slack_channel_rate=FAST_SLACK,
        catalog={"services": [service]},
        database_url=migrated_url,
    ) as stack:
        rollback_id = request(stack, "drill api")
        row = wait_state(stack, rollback_id, "done", "failed")
        assert row.state == "done", [e.summary for e in events(stack, rollback_id)]
        drilled = [e for e in events(stack, rollback_id) if e.kind == "gitops.paused"]
        assert len(drilled) == 1 and drilled[0].data["drill"] is True
        assert "DRILL: would pause" in drilled[0].summary
        assert pause_state(row)["state"] == "drill"
        after = _read(admin, gitops.KUSTOMIZATION, flux_ns, name)
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert "suspend" not in after["spec"]
        # The apiserver saw the patch, as a dry run.
        patches = [
            e
            for e in plane.audit_events()
            if (e.get("objectRef") or {}).get("name") == name and e.get("verb") == "patch"
        ]
        assert patches and all("dryRun=All" in e["requestURI"] for e in patches)
        said(stack, "DRILL: would pause")
        # Nothing was paused, so there is nothing to resume.
        assert "Nothing to resume" in command_reply(stack, f"resume-gitops R-{rollback_id}")


def test_policy_ask_says_approving_confirms_the_pause(
    plane: RealControlPlane,
    admin: KubeApis,
    namespaces: Callable[[str], str],
    migrated_url: str,
) -> None:
    service, _, _, _ = _flux_service(admin, namespaces, pause="ask")
    with RealStack(
        plane,
        slack_channel_rate=FAST_SLACK,
        catalog={"services": [service]},
        database_url=migrated_url,
    ) as stack:
        assert "approving this rollback confirms that pause" in str(open_modal(stack, "api"))
        rollback_id = request(stack, "api")
        wait_state(stack, rollback_id, "requested")
        said(stack, "approving this rollback confirms that pause")  # the approval message


def test_policy_refuse_refuses_while_reconciliation_is_active(
    plane: RealControlPlane,
    admin: KubeApis,
    namespaces: Callable[[str], str],
    migrated_url: str,
) -> None:
    service, flux_ns, name, before = _flux_service(admin, namespaces, pause="refuse")
    with RealStack(
        plane,
        slack_channel_rate=FAST_SLACK,
        catalog={"services": [service]},
        database_url=migrated_url,
    ) as stack:
        reply = command_reply(stack, "api")
        assert "gitops.pause: refuse" in reply and "Revert the change in Git" in reply
        assert _read(admin, gitops.KUSTOMIZATION, flux_ns, name) == before
        assert rollback_count(stack) == 0


def rollback_count(stack: LoopbackStack) -> int:
    from sqlalchemy import func, select

    from rollback_bot.storage.models import Rollback

    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count(Rollback.id))) or 0)


def _rollout_replicaset(
    admin: KubeApis, namespace: str, rollout: dict[str, Any], revision: int
) -> dict[str, Any]:
    """The ReplicaSet the Rollouts controller would make for ``revision`` (it does not run)."""
    pod_hash = f"r{revision}hash"
    template = {
        "metadata": {"labels": {"app": "pay", argo_rollouts.HASH: pod_hash}},
        "spec": {"containers": [{"name": "app", "image": f"registry.local/pay:v{revision}"}]},
    }
    body = {
        "metadata": {
            "name": f"pay-{pod_hash}",
            "labels": {"app": "pay", argo_rollouts.HASH: pod_hash},
            "annotations": {argo_rollouts.REVISION: str(revision)},
            "ownerReferences": [
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Rollout",
                    "name": "pay",
                    "uid": rollout["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "pay", argo_rollouts.HASH: pod_hash}},
            "template": template,
        },
    }
    made = admin.apps.create_namespaced_replica_set(namespace, body, _preload_content=False)  # type: ignore[arg-type]
    found: dict[str, Any] = json.loads(made.data)
    return found


def _rollout_status(admin: KubeApis, namespace: str, status: dict[str, Any]) -> None:
    k8s.CustomObjectsApi(admin.api_client).patch_namespaced_custom_object_status(
        "argoproj.io",
        "v1alpha1",
        namespace,
        "rollouts",
        "pay",
        {"status": status},
        _content_type="application/merge-patch+json",
    )


def test_an_argo_rollout_managed_by_argocd_is_aborted_undone_and_gitops_paused_from_slack(
    plane: RealControlPlane,
    admin: KubeApis,
    namespaces: Callable[[str], str],
    migrated_url: str,
) -> None:
    app_ns, argo_ns, app = namespaces("pay"), namespaces("argocd"), unique_name("pay")
    _custom(admin, gitops.APPLICATION, argo_ns, _application(app))
    before_app = _read(admin, gitops.APPLICATION, argo_ns, app)["spec"]
    rollout = k8s.CustomObjectsApi(admin.api_client).create_namespaced_custom_object(
        "argoproj.io",
        "v1alpha1",
        app_ns,
        "rollouts",
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {
                "name": "pay",
                "annotations": {
                    argo_rollouts.REVISION: "2",
                    "argocd.argoproj.io/tracking-id": f"{app}:argoproj.io/Rollout:{app_ns}/pay",
                },
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "pay"}},
                "template": {
                    "metadata": {"labels": {"app": "pay"}},
                    "spec": {"containers": [{"name": "app", "image": "registry.local/pay:v2"}]},
                },
                "strategy": {
                    "canary": {
                        "steps": [
                            {"setWeight": 25},
                            {"pause": {"duration": "10m"}},
                            {"analysis": {"templates": [{"templateName": "error-rate"}]}},
                        ]
                    }
                },
            },
        },
    )
    stable = _rollout_replicaset(admin, app_ns, rollout, 1)
    _rollout_replicaset(admin, app_ns, rollout, 2)
    # Played as the controller would report it: the canary at 25%, its analysis running.
    _rollout_status(
        admin,
        app_ns,
        {
            "phase": "Paused",
            "currentPodHash": "r2hash",
            "stableRS": "r1hash",
            "currentStepIndex": 1,
            "canary": {"currentStepAnalysisRunStatus": {"name": "pay-r2-1", "status": "Running"}},
        },
    )
    service = {
        **_service("pay", app_ns, gitops={"argocd_namespace": argo_ns}),
        "rollout": "pay",
    }
    del service["deployment"]
    with RealStack(
        plane,
        slack_channel_rate=FAST_SLACK,
        catalog={"services": [service]},
        database_url=migrated_url,
    ) as stack:
        shown = str(open_modal(stack, "pay"))
        assert "abort the canary (status.abort: true)" in shown
        assert "`revision 2` → `revision 1 (registry.local/pay:v1)" in shown
        assert "canary steps (step 2/3): setWeight 25, [pause 10m], analysis error-rate" in shown
        assert "canary weight: 25%" in shown and "Running (pay-r2-1)" in shown
        assert "[pause 10m]" in shown and "the bot pauses it before rolling back" in shown

        rollback_id = request(stack, "pay")
        wait_state(stack, rollback_id, "requested")
        click(stack, action_ids.APPROVE, user=BOB)

        def undone() -> bool:
            live = argo_rollouts.read_rollout(admin, app_ns, "pay")
            return live["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1")

        wait_until(undone, timeout=WAIT)
        live = argo_rollouts.read_rollout(admin, app_ns, "pay")
        assert live["status"]["abort"] is True  # the abort went through the status subresource
        expected = copy.deepcopy(stable["spec"]["template"])
        del expected["metadata"]["labels"][argo_rollouts.HASH]
        assert live["spec"]["template"] == expected
        paused = _read(admin, gitops.APPLICATION, argo_ns, app)["spec"]
        assert "automated" not in paused["syncPolicy"]
        # Played: the controller promotes the stable ReplicaSet and clears the abort.
        _rollout_status(
            admin,
            app_ns,
            {"phase": "Healthy", "currentPodHash": "r1hash", "stableRS": "r1hash", "abort": False},
        )
        row = wait_state(stack, rollback_id, "done", "failed")
        assert row.state == "done", [e.summary for e in events(stack, rollback_id)]
        kinds = [e.kind for e in events(stack, rollback_id)]
        assert kinds.index("gitops.paused") < kinds.index("kube.changed")
        status_patches = [
            e
            for e in plane.audit_events()
            if (e.get("objectRef") or {}).get("resource") == "rollouts"
            and (e.get("objectRef") or {}).get("namespace") == app_ns
            and e.get("verb") == "patch"
            and (e.get("user") or {}).get("username") == "admin"
        ]
        subresources = [(e["objectRef"].get("subresource") or "") for e in status_patches]
        # [status (played by the test), status (the bot's abort), "" (the bot's undo),
        #  status (played by the test)]: the abort went to the status subresource, first.
        assert subresources == ["status", "status", "", "status"]

        click(stack, action_ids.RESUME_GITOPS, user=ALICE)
        wait_until(
            lambda: pause_state(rollback(stack, rollback_id)).get("state") == "resumed",
            timeout=WAIT,
        )
        assert _read(admin, gitops.APPLICATION, argo_ns, app)["spec"] == before_app
