"""Gradual rollback: move traffic from the canary back to stable in steps.

Pulling all traffic off a canary at once can overload a stable Deployment that
was scaled for a share of it; stepping down (by default 50, 20, 5, then 0
percent on the canary) with a health check between steps catches that before
it becomes a second incident. This executor applies *one* step per call; the
scheduler waits, asks ``rollback_bot.executors.health.HealthGate`` and only then
asks for the next step, so nothing here sleeps.

Two traffic drivers are supported:

* ``replicas``: the stable and canary Deployments share traffic in proportion
  to their replicas. At plan time ``total = stable + canary`` is recorded; a
  step at ``p`` percent wants ``round(total * p / 100)`` canary replicas (half
  rounds up) and the rest on stable. Stable is scaled up *before* the canary is
  scaled down so capacity never dips, stable never goes below its plan-time
  count, and the canary is never scaled up.
* ``ingress``: ingress-nginx splits traffic by the
  ``nginx.ingress.kubernetes.io/canary-weight`` annotation on the canary
  Ingress; each step writes the percentage there, never raising it.

Both only ever move traffic towards stable, so re-applying a step (after a
crash, or twice by mistake) changes nothing.
"""

from __future__ import annotations

import math
from typing import Any

from rollback_bot.catalog import Gradual, Service
from rollback_bot.executors.base import Plan, SnapshotStore, StepResult
from rollback_bot.executors.bluegreen import (
    dry_run,
    guarded_write,
    read_or_explain,
    slot_state,
)
from rollback_bot.kube.client import MERGE_PATCH, KubeApis
from rollback_bot.kube.events import CHANGE_CAUSE
from rollback_bot.kube.model import Actor, Change, ExecutionError, SnapshotRecord, Verification

CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


def canary_share(total: int, percent: int) -> int:
    """Canary replicas for ``percent`` of ``total``, half rounding up (5 at 50% -> 3)."""
    return math.floor(total * percent / 100 + 0.5)


class GradualExecutor:
    """Steps canary traffic down to zero, one ``apply_step`` per step."""

    strategy = "gradual"

    def __init__(self, apis: KubeApis, snapshots: SnapshotStore | None = None) -> None:
        self._apis = apis
        self._snapshots = snapshots

    # -- plan --------------------------------------------------------------

    def plan(self, service: Service, *, to_revision: int | None = None) -> Plan:
        """The steps as they would run now; ``to_revision`` does not apply and is ignored."""
        g = _config(service)
        ns = service.namespace
        stable = self._deployment(ns, g.stable)
        canary = self._deployment(ns, g.canary)
        s, c = slot_state("stable", stable), slot_state("canary", canary)
        detail: dict[str, Any] = {"driver": g.driver, "stable": g.stable, "canary": g.canary}
        warnings: list[str] = []
        if g.driver == "replicas":
            total = s.replicas + c.replicas
            if s.replicas == 0:
                raise ExecutionError(
                    f"stable deployment {ns}/{g.stable} is scaled to zero; "
                    "refusing to move traffic back to it"
                )
            detail.update(total=total, stable_replicas=s.replicas, canary_replicas=c.replicas)
            changes = [
                _replica_step_line(i, pct, g, _replica_targets(detail, pct))
                for i, pct in enumerate(g.steps)
            ]
            if c.replicas == 0:
                warnings.append(f"canary {ns}/{g.canary} already has 0 replicas")
        else:
            ingress = self._canary_ingress(ns, g)
            weight = _annotations(ingress).get(CANARY_WEIGHT)
            detail.update(ingress=g.canary_ingress, initial_weight=weight)
            if not s.fully_available:
                warnings.append(
                    f"stable deployment {ns}/{g.stable} has {s.available}/{s.replicas} "
                    "replicas available"
                )
            changes = [
                f"step {i + 1}: ingress {ns}/{g.canary_ingress} canary-weight -> {pct}"
                for i, pct in enumerate(g.steps)
            ]
        return Plan(
            strategy=self.strategy,
            from_revision=None,
            to_revision=None,
            from_image=c.image,
            to_image=s.image,
            steps=g.steps,
            changes=tuple(changes),
            warnings=tuple(warnings),
            detail=detail,
        )

    def snapshot(self, service: Service) -> list[SnapshotRecord]:
        """Both Deployments (and the canary Ingress) before traffic moves."""
        g = _config(service)
        ns = service.namespace
        client = self._apis.core.api_client
        records = []
        for name in (g.stable, g.canary):
            dep = self._deployment(ns, name)
            records.append(
                SnapshotRecord("deployment", ns, name, None, client.sanitize_for_serialization(dep))
            )
        if g.driver == "ingress" and g.canary_ingress:
            ing = self._canary_ingress(ns, g)
            body = client.sanitize_for_serialization(ing)
            records.append(SnapshotRecord("ingress", ns, g.canary_ingress, None, body))
        if self._snapshots is not None:
            self._snapshots.save(records)
        return records

    # -- apply -------------------------------------------------------------

    def apply_step(
        self, service: Service, plan: Plan, *, step: int, actor: Actor, drill: bool
    ) -> StepResult:
        g = _config(service)
        if not 0 <= step < len(plan.steps):
            raise ExecutionError(
                f"step {step} does not exist; this rollback has steps 0..{len(plan.steps) - 1}"
            )
        pct = plan.steps[step]
        finished = step == len(plan.steps) - 1
        writer = self._apis.for_actor(actor)
        cause = plan.detail.get("change_cause")
        found: list[Change] = []
        if plan.detail.get("driver", g.driver) == "ingress":
            changes = self._set_weight(
                service, g, pct, writer=writer, drill=drill, cause=cause, found=found
            )
        else:
            changes = self._set_replicas(
                service, plan, pct, writer=writer, drill=drill, cause=cause, found=found
            )
        where = "would be" if drill else "is"
        return StepResult(
            step=step,
            finished=finished,
            changes=tuple(changes),
            message=f"canary {where} at {pct}% (step {step + 1} of {len(plan.steps)})",
            noop=not changes,
            found_done=tuple(found),
        )

    def _set_replicas(
        self,
        service: Service,
        plan: Plan,
        pct: int,
        *,
        writer: KubeApis,
        drill: bool,
        cause: str | None = None,
        found: list[Change] | None = None,
    ) -> list[Change]:
        g = _config(service)
        stable_target, canary_target = _replica_targets(plan.detail, pct)
        # Stable first: capacity must arrive before the canary's goes away.
        ns = service.namespace
        seen = found if found is not None else []
        up = self._scale(
            ns, g.stable, stable_target, grow=True, w=writer, d=drill, cause=cause, found=seen
        )
        down = self._scale(
            ns, g.canary, canary_target, grow=False, w=writer, d=drill, cause=cause, found=seen
        )
        return [c for c in (up, down) if c is not None]

    def _scale(
        self,
        ns: str,
        name: str,
        target: int,
        *,
        grow: bool,
        w: KubeApis,
        d: bool,
        cause: str | None = None,
        found: list[Change] | None = None,
    ) -> Change | None:
        """Scale ``name`` to ``target`` only if that moves it in the allowed direction.

        Already exactly at ``target`` with this rollback's change-cause is reported in
        ``found``: the write this step exists to make, made by this rollback, seen on the
        cluster.
        """

        def attempt() -> Change | None:
            dep = self._apis.apps.read_namespaced_deployment(name, ns)
            current = dep.spec.replicas if dep.spec and dep.spec.replicas is not None else 1
            notes = (dep.metadata.annotations if dep.metadata else None) or {}
            ours = cause is not None and notes.get(CHANGE_CAUSE) == cause
            if current == target and ours and found is not None:
                found.append(Change("scaled", "Deployment", ns, name, f"replicas {target}", d))
            if (grow and current >= target) or (not grow and current <= target):
                return None
            rv = dep.metadata.resource_version if dep.metadata else None
            meta: dict[str, Any] = {"resourceVersion": rv}
            if cause:
                meta["annotations"] = {CHANGE_CAUSE: cause}
            patch = {"metadata": meta, "spec": {"replicas": target}}
            w.apps.patch_namespaced_deployment(
                name, ns, patch, dry_run=dry_run(d), _content_type=MERGE_PATCH
            )
            return Change("scaled", "Deployment", ns, name, f"replicas {current} -> {target}", d)

        return guarded_write(attempt, what=f"scaling deployment {ns}/{name}")

    def _set_weight(
        self,
        service: Service,
        g: Gradual,
        pct: int,
        *,
        writer: KubeApis,
        drill: bool,
        cause: str | None = None,
        found: list[Change] | None = None,
    ) -> list[Change]:
        ns, name = service.namespace, _ingress_name(g)

        def attempt() -> list[Change]:
            ing = self._apis.networking.read_namespaced_ingress(name, ns)
            current = _annotations(ing).get(CANARY_WEIGHT)
            if current is not None and current.strip().isdigit() and int(current) <= pct:
                ours = cause is not None and _annotations(ing).get(CHANGE_CAUSE) == cause
                if int(current) == pct and ours and found is not None:
                    summary = f"canary-weight {pct}"
                    found.append(Change("patched", "Ingress", ns, name, summary, dry_run=drill))
                return []  # already there, or further towards stable
            rv = ing.metadata.resource_version if ing.metadata else None
            notes = {CANARY_WEIGHT: str(pct), **({CHANGE_CAUSE: cause} if cause else {})}
            patch = {"metadata": {"resourceVersion": rv, "annotations": notes}}
            writer.networking.patch_namespaced_ingress(
                name, ns, patch, dry_run=dry_run(drill), _content_type=MERGE_PATCH
            )
            summary = f"canary-weight {current} -> {pct}"
            return [Change("patched", "Ingress", ns, name, summary, dry_run=drill)]

        return guarded_write(attempt, what=f"setting the canary weight on ingress {ns}/{name}")

    # -- verify ------------------------------------------------------------

    def verify(self, service: Service, plan: Plan, *, drill: bool) -> Verification:
        """Done when no traffic reaches the canary and stable is fully available.

        In a drill nothing moved, so it checks what a real run relies on: the
        stable Deployment can take the traffic.
        """
        g = _config(service)
        ns = service.namespace
        stable = slot_state("stable", self._deployment(ns, g.stable))
        if drill:
            ok = stable.replicas > 0 and stable.available > 0
            return Verification(
                ok, True, f"drill: stable {g.stable} has {stable.available} available replicas"
            )
        final = plan.steps[-1] if plan.steps else 0
        if plan.detail.get("driver", g.driver) == "ingress":
            weight = _annotations(self._canary_ingress(ns, g)).get(CANARY_WEIGHT)
            if weight is None or not weight.strip().isdigit() or int(weight) > final:
                return Verification(False, True, f"canary-weight is {weight}, expected {final}")
        else:
            canary = slot_state("canary", self._deployment(ns, g.canary))
            wanted = _replica_targets(plan.detail, final)[1]
            if canary.replicas > wanted:
                return Verification(
                    False,
                    True,
                    f"canary {g.canary} has {canary.replicas} replicas, expected {wanted}",
                )
        if not stable.fully_available:
            return Verification(
                False,
                False,
                f"stable {g.stable}: {stable.available}/{stable.replicas} replicas available",
            )
        return Verification(
            True, True, f"canary at {final}%, stable {g.stable} {stable.available} available"
        )

    # -- reading -----------------------------------------------------------

    def _deployment(self, ns: str, name: str) -> Any:
        return read_or_explain(
            lambda: self._apis.apps.read_namespaced_deployment(name, ns),
            what=f"deployment {ns}/{name}",
        )

    def _canary_ingress(self, ns: str, g: Gradual) -> Any:
        name = _ingress_name(g)
        ing = read_or_explain(
            lambda: self._apis.networking.read_namespaced_ingress(name, ns),
            what=f"ingress {ns}/{name}",
        )
        if _annotations(ing).get(CANARY) != "true":
            raise ExecutionError(
                f"ingress {ns}/{name} is not an ingress-nginx canary "
                f'({CANARY} is not "true"); refusing to steer traffic with it'
            )
        return ing


def _config(service: Service) -> Gradual:
    if service.gradual is None:
        raise ExecutionError(f"{service.name} has no gradual section in the catalog")
    return service.gradual


def _ingress_name(g: Gradual) -> str:
    if not g.canary_ingress:
        raise ExecutionError("gradual.canary_ingress is required for the ingress driver")
    return g.canary_ingress


def _replica_targets(detail: dict[str, Any], pct: int) -> tuple[int, int]:
    """(stable, canary) replicas wanted at ``pct`` from the plan-time counts."""
    total = int(detail["total"])
    plan_stable, plan_canary = int(detail["stable_replicas"]), int(detail["canary_replicas"])
    canary = min(canary_share(total, pct), plan_canary)
    return max(total - canary, plan_stable), canary


def _replica_step_line(i: int, pct: int, g: Gradual, targets: tuple[int, int]) -> str:
    stable, canary = targets
    return f"step {i + 1}: canary {pct}% -> {g.canary} {canary}, {g.stable} {stable} replicas"


def _annotations(obj: Any) -> dict[str, str]:
    return dict((obj.metadata.annotations if obj.metadata else None) or {})
