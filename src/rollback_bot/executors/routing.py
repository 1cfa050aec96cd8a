"""One executor per strategy that sends each service to its target kind and its cluster.

The runner asks for an executor by strategy name alone; which code rolls a service back
also depends on what the service is (a Deployment, a StatefulSet, a DaemonSet: its
``target_kind``) and where it runs (its ``cluster``). ``TargetRouter`` keeps that choice
in one place: every call names the service, so it builds the executor for that kind with
that cluster's client (a kill switch's ConfigMap, an Argo Rollout and a Helm release
included: each is rolled back on the service's own cluster, never the default one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from rollback_bot.catalog import Service
from rollback_bot.executors.base import Executor, Plan, StepResult
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.model import Actor, SnapshotRecord, Verification

#: (strategy, the service, its cluster's client) -> the executor
Factory = Callable[[str, Service, KubeApis], Executor]


class TargetRouter:
    def __init__(
        self, strategy: str, *, apis_for: Callable[[Service], KubeApis], make: Factory
    ) -> None:
        self.strategy = strategy
        self._apis_for = apis_for
        self._make = make

    def executor(self, service: Service) -> Executor:
        """A fresh executor per call, as the runner always had: executors keep per-attempt
        state (retry budgets), which must not leak from one step or rollback to the next."""
        return self._make(self.strategy, service, self._apis_for(service))

    def plan(self, service: Service, *, to_revision: int | None = None) -> Plan:
        """The kind's plan; a service on a named cluster says which, first."""
        plan = self.executor(service).plan(service, to_revision=to_revision)
        if not service.cluster:
            return plan
        return replace(
            plan,
            changes=(f"cluster: {service.cluster} (kubeconfig context)", *plan.changes),
            detail={**plan.detail, "cluster": service.cluster},
        )

    def snapshot(self, service: Service) -> list[SnapshotRecord]:
        return self.executor(service).snapshot(service)

    def apply_step(
        self, service: Service, plan: Plan, *, step: int, actor: Actor, drill: bool
    ) -> StepResult:
        return self.executor(service).apply_step(service, plan, step=step, actor=actor, drill=drill)

    def verify(self, service: Service, plan: Plan, *, drill: bool) -> Verification:
        return self.executor(service).verify(service, plan, drill=drill)
