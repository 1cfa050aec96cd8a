"""Rolling back an Argo ``Rollout`` (a catalog service with ``rollout: <name>``).

One step, what a person would type: ``kubectl argo rollouts abort`` while a canary is in
flight (traffic back to the stable ReplicaSet at once), then ``kubectl argo rollouts undo``
to the target revision (its ReplicaSet's template into ``spec.template``), so the Rollout
holds the stable version instead of retrying the bad one. Verified when the controller
reports the target's pod-template hash as both current and stable and the phase Healthy.
The plan shows the Rollout's steps, canary weight and analysis status.
"""

from __future__ import annotations

from typing import Any

from rollback_bot.catalog import Service
from rollback_bot.executors.base import Plan, StepResult, moved_off_target
from rollback_bot.kube import argo_rollouts as ar
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.model import Actor, Change, SnapshotRecord, Verification
from rollback_bot.kube.revisions import images_of

STRATEGY = "rollout"


def _images(template: dict[str, Any]) -> list[str]:
    return list(images_of(template))


def _hash(obj: dict[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(ar.HASH)


def _in_flight(rollout: dict[str, Any]) -> bool:
    """A canary (or preview) is running: the current pods are not the stable ones."""
    status = rollout.get("status") or {}
    current, stable = status.get("currentPodHash"), status.get("stableRS")
    return bool(current and stable and current != stable and not status.get("abort"))


class RolloutExecutor:
    strategy = STRATEGY

    def __init__(self, apis: KubeApis) -> None:
        self.apis = apis

    def _name(self, service: Service) -> str:
        assert service.rollout, "a rollout executor for a service without rollout:"
        return service.rollout

    def plan(self, service: Service, *, to_revision: int | None = None) -> Plan:
        name = self._name(service)
        rollout = ar.read_rollout(self.apis, service.namespace, name)
        number, rs = ar.undo_target(ar.owned_replicasets(self.apis, rollout), to_revision)
        status = ar.rollout_status(rollout)
        target = rs["spec"]["template"]
        current = ((rollout.get("metadata") or {}).get("annotations") or {}).get(ar.REVISION)
        changes = []
        if _in_flight(rollout):
            changes.append(
                "abort the canary (status.abort: true): all traffic back to the stable "
                f"ReplicaSet {(rollout.get('status') or {}).get('stableRS')}"
            )
        changes.append(
            f"template: revision {current or '?'} -> revision {number} "
            f"({', '.join(_images(target))}) (kubectl argo rollouts undo)"
        )
        changes += status.lines()
        return Plan(
            strategy=STRATEGY,
            from_revision=int(current) if current and current.isdigit() else None,
            to_revision=number,
            from_image=", ".join(_images(rollout["spec"].get("template") or {})) or None,
            to_image=", ".join(_images(target)) or None,
            changes=tuple(changes),
            detail={
                "namespace": service.namespace,
                "rollout": name,
                "target_replicaset": rs["metadata"]["name"],
                "target_template_hash": _hash(rs),
                "target_images": _images(target),
                "steps": list(status.steps),
                "current_step": status.current_step,
                "canary_weight": status.canary_weight,
                "analysis": status.analysis,
            },
        )

    def snapshot(self, service: Service) -> list[SnapshotRecord]:
        rollout = ar.read_rollout(self.apis, service.namespace, self._name(service))
        revision = ((rollout.get("metadata") or {}).get("annotations") or {}).get(ar.REVISION)
        number = int(revision) if revision and revision.isdigit() else None
        return [SnapshotRecord("rollout", service.namespace, self._name(service), number, rollout)]

    def apply_step(
        self, service: Service, plan: Plan, *, step: int, actor: Actor, drill: bool
    ) -> StepResult:
        writer = self.apis.for_actor(actor)
        name = self._name(service)
        rollout = ar.read_rollout(self.apis, service.namespace, name)
        done: list[Change] = []
        if _in_flight(rollout):
            done.append(ar.abort(writer, service.namespace, name, dry_run=drill))
        wanted = plan.detail.get("target_images")
        if _images(rollout["spec"].get("template") or {}) != wanted:
            _, change = ar.undo(
                writer, service.namespace, name, to_revision=plan.to_revision, dry_run=drill
            )
            done.append(change)
        where = f"rollout {service.namespace}/{name}"
        if not done:
            message = f"{where} already runs revision {plan.to_revision}; nothing to do"
        else:
            message = f"rolled back {where} to revision {plan.to_revision} ({plan.to_image})"
        if drill:
            message = "drill, nothing changed: " + message.replace("rolled back", "would roll back")
        return StepResult(step=step, finished=True, changes=tuple(done), message=message)

    def verify(self, service: Service, plan: Plan, *, drill: bool) -> Verification:
        if drill:
            return Verification(True, True, "drill: nothing was changed, nothing to verify")
        name = self._name(service)
        rollout = ar.read_rollout(self.apis, service.namespace, name)
        where = f"rollout {service.namespace}/{name}"
        moved = moved_off_target(plan, rollout["spec"].get("template") or {}, where)
        if moved is not None:
            return moved
        status = rollout.get("status") or {}
        target = plan.detail.get("target_template_hash")
        phase = status.get("phase") or "Unknown"
        settled = status.get("currentPodHash") == target and status.get("stableRS") == target
        if settled and phase == "Healthy":
            return Verification(
                True, True, f"rollout {name} is Healthy on revision {plan.to_revision}"
            )
        return Verification(
            False, False, f"rollout {name} is {phase}, waiting for the controller to settle"
        )
