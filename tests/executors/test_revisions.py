"""Revision history: reading it from the cluster, and the pure decisions over it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.revisions import (
    Revision,
    TargetError,
    choose_target,
    configmaps_referenced,
    current_revision,
    history_limit_warning,
    known_stable,
    label_selector,
    list_revisions,
    same_template,
)
from tests.executors.conftest import NAMESPACE, Cluster

# Not yet on the real control plane: kept on the emulator until converted.
pytestmark = pytest.mark.emulator_only

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rev(number: int, minutes: float, *, replicas: int = 2, ready: int = 2) -> Revision:
    return Revision(
        number=number,
        replicaset=f"app-{number}",
        images=(f"app:v{number}",),
        created_at=T0 + timedelta(minutes=minutes),
        replicas=replicas,
        ready=ready,
        template={},
        configmaps=(),
        annotations={},
    )


def test_list_revisions_reads_the_history_oldest_first(apis: KubeApis, cluster: Cluster) -> None:
    cluster.configmap("checkout-config", {"A": "1"})
    cluster.create("checkout", "shop/checkout:v1", configmap="checkout-config")
    cluster.roll("checkout", "shop/checkout:v2", revision=2)
    cluster.create("other", "shop/other:v1")  # another Deployment's ReplicaSets stay out
    revisions = list_revisions(apis, NAMESPACE, "checkout")
    assert [r.number for r in revisions] == [1, 2]
    assert [r.images for r in revisions] == [("shop/checkout:v1",), ("shop/checkout:v2",)]
    assert all(r.configmaps == ("checkout-config",) for r in revisions)
    assert all(r.replicaset.startswith("checkout-") and r.created_at for r in revisions)
    current = current_revision(apis, NAMESPACE, "checkout")
    assert current is not None and current.number == 2


def test_label_selector_covers_match_expressions() -> None:
    selector: dict[str, Any] = {
        "matchLabels": {"app": "x", "tier": "web"},
        "matchExpressions": [
            {"key": "track", "operator": "In", "values": ["stable", "canary"]},
            {"key": "legacy", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
            {"key": "owner", "operator": "Exists"},
        ],
    }
    assert label_selector(selector) == (
        "app=x,tier=web,track in (stable,canary),!legacy,zone notin (b),owner"
    )


def test_configmaps_referenced_in_every_place_a_pod_reads_them() -> None:
    template = {
        "spec": {
            "initContainers": [
                {"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "init"}}}]}
            ],
            "containers": [
                {
                    "env": [
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env"}}},
                        {"name": "C", "valueFrom": {"secretKeyRef": {"name": "secret"}}},
                    ],
                    "envFrom": [{"configMapRef": {"name": "bulk"}}, {"secretRef": {"name": "s"}}],
                }
            ],
            "volumes": [
                {"name": "v", "configMap": {"name": "files"}},
                {
                    "name": "p",
                    "projected": {
                        "sources": [{"configMap": {"name": "proj"}}, {"secret": {"name": "x"}}]
                    },
                },
                {"name": "again", "configMap": {"name": "env"}},
            ],
        }
    }
    assert configmaps_referenced(template) == ("init", "env", "bulk", "files", "proj")


def test_same_template_ignores_the_hash_label_and_empty_fields() -> None:
    a = {
        "metadata": {"labels": {"app": "x", "pod-template-hash": "abc"}},
        "spec": {"containers": [{"image": "i", "env": []}]},
    }
    b = {
        "metadata": {"labels": {"app": "x"}, "annotations": {}},
        "spec": {"containers": [{"image": "i"}]},
    }
    assert same_template(a, b)
    assert not same_template(
        a, {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"image": "j"}]}}
    )


def test_choose_target_follows_kubectl() -> None:
    history = [rev(1, 0), rev(2, 10), rev(4, 20)]
    assert choose_target(history, "app", None).number == 2  # second newest, not "4 - 1"
    assert choose_target(history, "app", 1).number == 1
    with pytest.raises(TargetError, match="unable to find specified revision 3 in history"):
        choose_target(history, "app", 3)
    with pytest.raises(TargetError, match='no rollout history found for deployment "app"'):
        choose_target(history[:1], "app", None)


def test_history_limit_warning_below_three() -> None:
    assert history_limit_warning({"spec": {"revisionHistoryLimit": 2}}) is not None
    assert "at least 3" in (history_limit_warning({"spec": {"revisionHistoryLimit": 0}}) or "")
    assert history_limit_warning({"spec": {"revisionHistoryLimit": 3}}) is None
    assert history_limit_warning({"spec": {}}) is None


def test_known_stable_needs_a_quiet_full_window() -> None:
    history = [rev(1, 0), rev(2, 60), rev(3, 65), rev(4, 120)]
    window = timedelta(minutes=15)
    alerts = [T0 + timedelta(minutes=62), T0 + timedelta(minutes=200)]
    stable = known_stable(
        history, alert_times=alerts, window=window, now=T0 + timedelta(minutes=140)
    )
    # 1: live 60 min, quiet. 2: replaced after 5 min. 3: live 55 min, no alert in its
    # first 15. 4: live 20 min, all ready, quiet (the alert at 200 is in the future).
    assert stable == [1, 3, 4]


def test_known_stable_excludes_a_live_revision_not_fully_ready_or_too_young() -> None:
    window = timedelta(minutes=15)
    now = T0 + timedelta(minutes=30)
    assert known_stable([rev(1, 0, ready=1)], alert_times=[], window=window, now=now) == []
    assert known_stable([rev(1, 20)], alert_times=[], window=window, now=now) == []
    alert = [T0 + timedelta(minutes=5)]
    assert known_stable([rev(1, 0)], alert_times=alert, window=window, now=now) == []


def test_known_stable_uses_the_callers_live_times() -> None:
    history = [rev(1, 0), rev(2, 5)]
    now = T0 + timedelta(minutes=100)
    window = timedelta(minutes=15)
    assert known_stable(history, alert_times=[], window=window, now=now) == [2]
    earlier = {1: T0 - timedelta(minutes=60)}
    assert known_stable(history, alert_times=[], window=window, now=now, live_since=earlier) == [
        1,
        2,
    ]
