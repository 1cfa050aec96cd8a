"""Rollout verification: the same verdicts as ``kubectl rollout status``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.revisions import read_deployment
from rollback_bot.kube.rollout import rollout_status
from tests.executors.conftest import Cluster, poll
from tests.support.backend import Backend


def deployment(generation: int = 2, observed: int = 2, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": observed, **status},
    }


def test_spec_update_not_observed_yet() -> None:
    verdict = rollout_status(deployment(generation=3, observed=2))
    assert (verdict.ok, verdict.done) == (False, False)
    assert verdict.detail == "Waiting for deployment spec update to be observed..."


def test_progress_deadline_exceeded_is_a_final_failure() -> None:
    conditions = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    verdict = rollout_status(deployment(conditions=conditions, updatedReplicas=1))
    assert (verdict.ok, verdict.done) == (False, True)
    assert verdict.detail == 'deployment "web" exceeded its progress deadline'


def test_waiting_messages_match_kubectl() -> None:
    prefix = 'Waiting for deployment "web" rollout to finish: '
    assert rollout_status(deployment(updatedReplicas=1)).detail == (
        prefix + "1 out of 3 new replicas have been updated..."
    )
    assert rollout_status(deployment(updatedReplicas=3, replicas=4)).detail == (
        'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...'
    )
    assert rollout_status(
        deployment(updatedReplicas=3, replicas=3, availableReplicas=2)
    ).detail == (
        'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...'
    )


def test_complete_rollout() -> None:
    verdict = rollout_status(deployment(updatedReplicas=3, replicas=3, availableReplicas=3))
    assert (verdict.ok, verdict.done) == (True, True)
    assert verdict.detail == 'deployment "web" successfully rolled out'


def test_agrees_with_kubectl_on_a_live_rollout(
    kube_backend: Backend, apis: KubeApis, cluster: Cluster, tmp_path: Path
) -> None:
    cluster.create("checkout", "shop/checkout:v1")
    poll(lambda: rollout_status(read_deployment(apis, cluster.ns, "checkout")).done)
    done = kube_backend.kubectl(
        tmp_path, "rollout", "status", "deployment/checkout", "-n", cluster.ns, "--watch=false"
    )
    ours = rollout_status(read_deployment(apis, cluster.ns, "checkout"))
    assert done.returncode == 0 and ours.ok
    assert done.stdout.strip() == ours.detail


def test_a_crashing_release_exceeds_its_progress_deadline_as_kubectl_says(
    kube_backend: Backend, apis: KubeApis, cluster: Cluster, tmp_path: Path
) -> None:
    """A release whose pods never become Ready: the controller gives up after
    progressDeadlineSeconds, and our verdict and kubectl's are the same final failure."""
    cluster.create("checkout", "shop/checkout:v1")
    poll(lambda: rollout_status(read_deployment(apis, cluster.ns, "checkout")).ok)
    cluster.patch("checkout", {"spec": {"progressDeadlineSeconds": 2}})
    cluster.roll("checkout", kube_backend.crashing("shop/checkout:v2"), revision=2)
    poll(lambda: rollout_status(read_deployment(apis, cluster.ns, "checkout")).done)
    ours = rollout_status(read_deployment(apis, cluster.ns, "checkout"))
    assert (ours.ok, ours.done) == (False, True)
    assert ours.detail == 'deployment "checkout" exceeded its progress deadline'
    done = kube_backend.kubectl(
        tmp_path, "rollout", "status", "deployment/checkout", "-n", cluster.ns, "--watch=false"
    )
    assert done.returncode != 0
    assert 'deployment "checkout" exceeded its progress deadline' in done.stderr
    old = [rs for rs in kube_backend.list("replicasets", cluster.ns) if rs["spec"]["replicas"]]
    assert len(old) == 2  # the old pods keep serving next to the stalled new ones
