"""Which executor rolls a service back: the one place a strategy name becomes code.

The lifecycle and the scheduler only know ``Service.strategy``; mapping it here
keeps them free of imports of every strategy and makes an unknown strategy a
clear error instead of a silent fallback to the wrong kind of rollback.
"""

from __future__ import annotations

from rollback_bot.executors.base import Executor, SnapshotStore
from rollback_bot.executors.bluegreen import BlueGreenExecutor
from rollback_bot.executors.gradual import GradualExecutor
from rollback_bot.executors.helm import HelmExecutor
from rollback_bot.executors.helm_cli import HelmCli
from rollback_bot.executors.instant import InstantExecutor
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.model import ExecutionError

STRATEGIES = ("instant", "blue-green", "gradual", "helm")


def executor_for(
    strategy: str, *, apis: KubeApis, snapshots: SnapshotStore, helm: HelmCli | None = None
) -> Executor:
    """The executor for ``strategy``.

    Executors never wait on the health gate; the runner asks it between steps.
    """
    if strategy == "instant":
        return InstantExecutor(apis, snapshots)
    if strategy == "blue-green":
        return BlueGreenExecutor(apis, snapshots)
    if strategy == "gradual":
        return GradualExecutor(apis, snapshots)
    if strategy == "helm":
        return HelmExecutor(apis, helm)
    raise ExecutionError(f"unknown rollback strategy '{strategy}' (known: {', '.join(STRATEGIES)})")


def executor_for_target(
    strategy: str,
    *,
    kind: str,
    apis: KubeApis,
    snapshots: SnapshotStore,
    helm: HelmCli | None = None,
) -> Executor:
    """The executor for a service whose target is ``kind`` (``Service.target_kind``).

    Deployments keep every strategy; a StatefulSet or DaemonSet is rolled back through
    its ControllerRevisions (strategy instant, which check-config enforces). Another kind
    of target plugs in here.
    """
    from rollback_bot.executors.workload import WorkloadExecutor
    from rollback_bot.kube.workloads import WORKLOAD_KINDS

    if kind in WORKLOAD_KINDS:
        if strategy != "instant":
            raise ExecutionError(f"a {kind} is rolled back with strategy instant, not {strategy}")
        return WorkloadExecutor(apis, snapshots, kind)
    return executor_for(strategy, apis=apis, snapshots=snapshots, helm=helm)
