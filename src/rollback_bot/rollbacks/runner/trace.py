"""What a rollback leaves on the cluster and the timeline beside its writes.

``kubernetes.io/change-cause`` and core/v1 Events make the bot's changes visible to a
``kubectl`` user; the change recorder files each Kubernetes write on the timeline in the
transaction of the step that made it; ``check_line`` words a health check for people.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from rollback_bot.catalog import Service
from rollback_bot.clock import Clock
from rollback_bot.executors.base import StepResult
from rollback_bot.ids import format_incident_id
from rollback_bot.ids import format_rollback_id as rid
from rollback_bot.kube.events import EventRecorder, change_cause
from rollback_bot.rollbacks.model import BOT
from rollback_bot.storage.models import Rollback
from rollback_bot.storage.uow import UnitOfWork, UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind


class ClusterTrace:
    def __init__(
        self, *, uow: UnitOfWorkFactory, clock: Clock, events: EventRecorder | None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._events = events

    def approvers(self, row: Rollback) -> tuple[str, ...]:
        """Who approved the rollback, in the order they did."""
        with self._uow(read_only=True) as uow:
            return approvers_in(uow, row.id)

    def cause(self, row: Rollback, approvers: tuple[str, ...] | None = None) -> str:
        """``kubernetes.io/change-cause`` of this rollback's writes: ids, people, why.

        ``approvers``: when the caller has just read them (else they are read here).
        """
        if approvers is None:
            approvers = self.approvers(row)
        return change_cause(
            rollback=rid(row.id),
            incident=format_incident_id(row.incident_id) if row.incident_id else None,
            requested_by=row.requested_by,
            approved_by=approvers,
            reason=row.reason or "",
            target=f"revision {row.to_revision} ({row.to_image})"
            if row.to_revision
            else (row.to_image or "the previous state"),
        )

    def event(
        self,
        row: Rollback,
        service: Service,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        uids: Mapping[tuple[str, str], str] | None = None,
        at: datetime | None = None,
    ) -> None:
        """A core/v1 Event on the object the rollback changes; drills change nothing.

        ``uids``: (kind, name) to uid of objects just read, so the Event need not read
        its object again for ``involvedObject.uid``. ``at``: when it happened, if that
        was before now (``kubectl describe`` orders Events by their time).
        """
        if self._events is None or row.drill or service.helm is not None:
            return  # a Helm release's record is its own history (helm history)
        if service.blue_green is not None and row.strategy == "blue-green":
            kind, name = "Service", service.blue_green.service
        elif row.strategy == "flag":
            flag = service.flag(str((row.plan.get("detail") or {}).get("flag", "")))
            if flag is None:
                return
            kind, name = "ConfigMap", flag.configmap
        elif service.rollout:
            kind, name = "Rollout", service.rollout
        else:
            kind = {"statefulset": "StatefulSet", "daemonset": "DaemonSet"}.get(
                service.target_kind, "Deployment"
            )
            name = service.target_name
        self._events.record(
            namespace=service.namespace,
            kind=kind,
            name=name,
            reason=reason,
            message=message,
            at=at or self._clock.now(),
            warning=warning,
            cluster=service.cluster,
            uid=(uids or {}).get((kind, name)),
        )


def check_line(check: dict[str, Any]) -> str:
    """One health check as a person reads it on the timeline."""
    if check.get("result") == "skipped":
        return f"health check {check['name']}: not checked ({check.get('skipped')})"
    line = (
        f"health check {check['name']} ({check.get('source')}): {check.get('query')} = "
        f"{check.get('value')}; wanted {check.get('threshold')}: {check.get('result')}"
    )
    return line + (f" ({check['reason']})" if check.get("reason") else "")


def change_recorder(
    result: StepResult, now: datetime, *, interrupted: bool = False
) -> Callable[[UnitOfWork, Rollback], None]:
    """Kubernetes writes of a step, stored in the same transaction as the step's move.

    ``interrupted``: the step had begun before a restart and its outcome was never
    recorded. Its writes that the cluster already shows landed before the bot died;
    they are recorded too, marked ``recovered``, so every write the cluster saw is on
    the timeline exactly once.
    """
    recovered = result.found_done if interrupted else ()

    def save(uow: UnitOfWork, row: Rollback) -> None:
        for change, was_recovered in [(c, False) for c in result.changes] + [
            (c, True) for c in recovered
        ]:
            prefix = "dry run: " if change.dry_run else ""
            if was_recovered:
                prefix = "recovered (written before the bot restarted): " + prefix
            uow.timeline.append(
                at=now,
                actor=BOT,
                kind=TimelineKind.KUBE_CHANGED,
                summary=f"{prefix}{change.verb} {change.kind}/{change.name}: {change.summary}",
                incident_id=row.incident_id,
                rollback_id=row.id,
                service=row.service,
                data={
                    "verb": change.verb,
                    "kind": change.kind,
                    "namespace": change.namespace,
                    "name": change.name,
                    "dry_run": change.dry_run,
                    "step": result.step,
                    **({"recovered": True} if was_recovered else {}),
                },
            )

    return save


def approvers_in(uow: UnitOfWork, rollback_id: int) -> tuple[str, ...]:
    """Who approved the rollback, in the order they did, read in the caller's transaction."""
    decisions = uow.approvals.decisions(rollback_id=rollback_id)
    return tuple(actor for actor, decision in decisions if decision == "approve")
