"""Rollout verification: the same verdicts as ``kubectl rollout status``."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.revisions import read_deployment
from rollback_bot.kube.rollout import rollout_status
from sandbox.kube import KubeEmulator
from tests.executors.conftest import NAMESPACE, Cluster, poll

# Not yet on the real control plane: kept on the emulator until converted.
pytestmark = pytest.mark.emulator_only


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
    emu: KubeEmulator, apis: KubeApis, cluster: Cluster, tmp_path: Path
) -> None:
    cluster.create("checkout", "shop/checkout:v1")
    poll(lambda: rollout_status(read_deployment(apis, NAMESPACE, "checkout")).done)
    config = emu.write_kubeconfig(tmp_path / "kc")
    done = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            config,
            "--cache-dir",
            str(tmp_path / "cache"),
            "rollout",
            "status",
            "deployment/checkout",
            "-n",
            NAMESPACE,
            "--watch=false",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    ours = rollout_status(read_deployment(apis, NAMESPACE, "checkout"))
    assert done.returncode == 0 and ours.ok
    assert done.stdout.strip() == ours.detail
