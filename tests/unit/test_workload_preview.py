"""StatefulSet/DaemonSet plan lines and rollout status, as pure functions over objects."""

from __future__ import annotations

from typing import Any

from rollback_bot.kube.workloads import (
    build_workload_preview,
    daemonset_status,
    pods_replaced,
    statefulset_status,
    to_revision,
)


def _sts(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "db", "generation": 2},
        "spec": {
            "replicas": 3,
            "template": {"spec": {"containers": [{"name": "app", "image": "db:v2"}]}},
            **spec,
        },
        "status": {"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 1},
    }


def _revision(image: str, number: int) -> Any:
    template = {"spec": {"containers": [{"name": "app", "image": image}]}, "$patch": "replace"}
    return to_revision(
        {
            "metadata": {"name": f"db-{number}abc", "creationTimestamp": "2026-11-01T00:00:00Z"},
            "revision": number,
            "data": {"spec": {"template": template}},
        }
    )


def test_a_partition_keeps_the_lower_ordinals_and_says_so() -> None:
    sts = _sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}})
    assert pods_replaced("statefulset", sts) == (
        "pods replaced: db-2, db-1, one at a time, highest ordinal first; db-0 stays "
        "(below the partition)"
    )
    preview = build_workload_preview(
        "statefulset", sts, _revision("db:v2", 2), _revision("db:v1", 1)
    )
    assert "update strategy: RollingUpdate (partition 1)" in preview.changes
    assert "image (app): db:v2 -> db:v1" in preview.changes
    assert any("volumes and data are NOT rolled back" in w for w in preview.warnings)
    # The $patch directive is ControllerRevision bookkeeping, never part of the template.
    assert "$patch" not in _revision("db:v1", 1).template


def test_partitioned_status_waits_for_the_pods_above_the_partition() -> None:
    sts = _sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}})
    waiting = statefulset_status(sts)
    assert not waiting.done
    assert waiting.detail == (
        "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated..."
    )
    sts["status"]["updatedReplicas"] = 2
    assert statefulset_status(sts).detail == (
        "partitioned roll out complete: 2 new pods have been updated..."
    )


def test_on_delete_offers_no_rollout_and_says_why() -> None:
    sts = _sts(updateStrategy={"type": "OnDelete"})
    assert (
        pods_replaced("statefulset", sts) == "pods replaced: none until each is deleted (OnDelete)"
    )
    verdict = statefulset_status(sts)
    assert verdict.done and "until each is deleted" in verdict.detail


def test_daemonset_status_is_kubectls() -> None:
    ds = {
        "metadata": {"name": "agent", "generation": 3},
        "spec": {"updateStrategy": {"type": "RollingUpdate"}},
        "status": {
            "observedGeneration": 2,
            "desiredNumberScheduled": 2,
            "updatedNumberScheduled": 2,
            "numberAvailable": 2,
        },
    }
    assert daemonset_status(ds).detail == "Waiting for daemon set spec update to be observed..."
    ds["status"].update(observedGeneration=3, updatedNumberScheduled=1)
    assert daemonset_status(ds).detail == (
        'Waiting for daemon set "agent" rollout to finish: 1 out of 2 new pods have been updated...'
    )
    ds["status"].update(updatedNumberScheduled=2, numberAvailable=1)
    assert daemonset_status(ds).detail == (
        'Waiting for daemon set "agent" rollout to finish: 1 of 2 updated pods are available...'
    )
    ds["status"].update(numberAvailable=2)
    done = daemonset_status(ds)
    assert done.ok and done.done and done.detail == 'daemon set "agent" successfully rolled out'
