"""GitOps-safe rollbacks: plan the pause, pause as a step of the rollback, resume later.

* ``with_gitops`` (planning): finds who reconciles the service's workload
  (``kube.gitops.detect``), refuses when the service's policy is ``gitops.pause: refuse`` and
  the tool is active, and otherwise says in the plan (preview, approval message) what will be
  paused and who may resume it. What it found is kept in ``plan.detail["gitops"]``.
* ``GitOpsPauser`` (the runner, before the rollback's first Kubernetes write): pauses it.
  The previous settings are written on the rollback's row (``plan.detail["gitops_pause"]``)
  with a ``gitops.pausing`` timeline entry *before* the patch, so a crash in between resumes
  by patching again, never by reading the already-paused object as "previous". A drill sends
  the patch as a server-side dry run.
* ``GitOpsService.resume`` (a person, once the fix is merged): policy-checked like pause and
  abort, restores exactly what was there, and records it (``gitops.resumed``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from rollback_bot.catalog import Catalog, Service
from rollback_bot.clock import Clock
from rollback_bot.executors.base import Plan
from rollback_bot.ids import format_rollback_id as rid
from rollback_bot.kube import gitops as kube_gitops
from rollback_bot.kube.argo_rollouts import read_rollout
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.gitops import Owner
from rollback_bot.kube.model import Actor, ExecutionError
from rollback_bot.kube.revisions import read_deployment
from rollback_bot.rollbacks.gitops_follow_ups import resume_command
from rollback_bot.rollbacks.model import Reply
from rollback_bot.rollbacks.policies import Principal, may_operate
from rollback_bot.storage.models import Rollback
from rollback_bot.storage.uow import UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind

log = logging.getLogger(__name__)

GITOPS = "gitops"  # plan.detail: what planning found
PAUSE = "gitops_pause"  # plan.detail: what the runner did (state, previous settings)
PAUSING, PAUSED, DRILLED, NOT_NEEDED, RESUMED = (
    "pausing",
    "paused",
    "drill",
    "not_needed",
    "resumed",
)
WHO_MAY_RESUME = "the service's requesters and approvers"


def _declared(service: Service) -> tuple[str, str] | None:
    ref = service.gitops.argocd
    return (ref.application, ref.namespace) if ref else None


def _without_old_warning(warnings: tuple[str, ...]) -> tuple[str, ...]:
    """The preview's generic "managed by ... will be undone" line, replaced by the plan's."""
    return tuple(w for w in warnings if not w.startswith("managed by "))


def with_gitops(plan: Plan, service: Service, apis: KubeApis) -> Plan:
    """The plan, saying who reconciles the workload and what the rollback does about it."""
    if plan.strategy == "flag" or not (service.rollout or service.deployment):
        return plan  # a kill switch, or a Helm release: no workload of its own to look at
    workload = (
        read_rollout(apis, service.namespace, service.rollout)
        if service.rollout
        else read_deployment(apis, service.namespace, service.deployment)
    )
    try:
        owner = kube_gitops.detect(
            apis,
            workload,
            argocd_namespace=service.gitops.argocd_namespace,
            declared=_declared(service),
        )
    except ExecutionError as exc:  # the Application lookup by label: say so, do not block
        line = f"could not check whether an Argo CD Application manages it: {exc}"
        return replace(plan, warnings=(*plan.warnings, line))
    if owner is None:
        return plan
    obj = kube_gitops.read_owner_object(apis, owner)
    if obj is None:
        line = f"{owner.label} ({owner.via}) was not found: nothing to pause"
        return replace(plan, warnings=(*plan.warnings, line))
    active = kube_gitops.reconciling(owner, obj)
    policy = service.gitops.pause
    if active and policy == "refuse":
        raise ExecutionError(
            f"{service.label} is reconciled by {owner.label} ({owner.via}), which is active, "
            "and this service's policy is gitops.pause: refuse: the rollback would be undone "
            f"by the next sync. Revert the change in Git, or pause the {owner.kind} yourself, "
            "and ask again"
        )
    changes = plan.changes
    if active:
        line = (
            f"reconciled by {owner.label} ({owner.via}): the bot pauses it before rolling back "
            f"({owner.pause_text}); {WHO_MAY_RESUME} can resume it with the thread's "
            "Resume GitOps button once the fix is merged"
        )
        if policy == "ask":
            line += "; approving this rollback confirms that pause"
        changes = (*changes, f"gitops: pause {owner.label}: {owner.pause_text}")
    else:
        line = f"reconciled by {owner.label} ({owner.via}), already paused: left as it is"
    detail = {
        **plan.detail,
        GITOPS: {"owner": owner.to_dict(), "reconciling": active, "policy": policy},
    }
    warnings = (*_without_old_warning(plan.warnings), line)
    return replace(plan, changes=changes, warnings=warnings, detail=detail)


class Recorder(Protocol):
    """The rollback writer's ``record`` (a timeline entry and a row update, one transaction)."""

    def record(
        self,
        rollback_id: int,
        *,
        kind: str,
        summary: str,
        data: dict[str, Any] | None = None,
        actor: str = ...,
        update: Callable[[Rollback], None] | None = None,
    ) -> None: ...


def _set_pause(**values: Any) -> Callable[[Rollback], None]:
    def update(row: Rollback) -> None:
        plan = dict(row.plan or {})
        detail = dict(plan.get("detail") or {})
        detail[PAUSE] = {**(detail.get(PAUSE) or {}), **values}
        plan["detail"] = detail
        row.plan = plan  # a new object: the JSON column sees the change

    return update


def pause_state(row: Rollback) -> dict[str, Any]:
    detail = (row.plan or {}).get("detail") or {}
    found = detail.get(PAUSE) or {}
    return dict(found)


def planned_owner(row: Rollback) -> tuple[Owner, bool] | None:
    """(the owner planning found, whether it was reconciling), or None."""
    info = ((row.plan or {}).get("detail") or {}).get(GITOPS)
    if not info:
        return None
    return Owner.from_dict(info["owner"]), bool(info.get("reconciling"))


def paused_owner(row: Rollback) -> Owner | None:
    """The owner this rollback paused and nobody resumed yet: what "Resume GitOps" acts on."""
    found = planned_owner(row)
    if found is None or pause_state(row).get("state") != PAUSED:
        return None
    return found[0]


class GitOpsPauser:
    """The runner's pause step, before the rollback's first write."""

    def __init__(
        self, apis: KubeApis, *, apis_for: Callable[[Service], KubeApis] | None = None
    ) -> None:
        self._apis = apis
        # A service on a named cluster is paused there: its GitOps owner lives beside it.
        self._apis_for = apis_for

    def before_first_write(
        self, row: Rollback, writer: Recorder, actor: Actor, service: Service | None = None
    ) -> str | None:
        """Pause reconciliation if the plan says so and it is not done yet; a thread line."""
        found = planned_owner(row)
        if found is None or not found[1]:
            return None
        owner, _ = found
        state = pause_state(row)
        if state.get("state") in (PAUSED, DRILLED, NOT_NEEDED, RESUMED):
            return None
        cluster = self._apis_for(service) if service and self._apis_for else self._apis
        apis = cluster.for_actor(actor)
        data: dict[str, Any] = {"owner": owner.to_dict()}
        if row.drill:
            previous, change = kube_gitops.pause(apis, owner, dry_run=True)
            text = (
                f"DRILL: would pause {owner.label} ({owner.pause_text}); the apiserver accepted "
                "the patch as a dry run, nothing changed"
            )
            if change is None:
                text = f"DRILL: {owner.label} is already paused; nothing to pause"
            writer.record(
                row.id,
                kind=TimelineKind.GITOPS_PAUSED,
                summary=text,
                data={**data, "previous": previous, "drill": True},
                update=_set_pause(state=DRILLED),
            )
            return text
        if state.get("state") != PAUSING:
            obj = kube_gitops.read_owner_object(apis, owner)
            if obj is None:
                raise ExecutionError(f"{owner.label} not found: cannot pause its reconciliation")
            if not kube_gitops.reconciling(owner, obj):
                text = f"{owner.label} was paused by someone else meanwhile: left as it is"
                writer.record(
                    row.id,
                    kind=TimelineKind.GITOPS_PAUSED,
                    summary=text,
                    data={**data, "already_paused": True},
                    update=_set_pause(state=NOT_NEEDED),
                )
                return text
            previous = kube_gitops.previous_settings(owner, obj)
            writer.record(
                row.id,
                kind=TimelineKind.GITOPS_PAUSING,
                summary=f"pausing {owner.label} before rolling back {row.service}",
                data={**data, "previous": previous},
                update=_set_pause(state=PAUSING, previous=previous),
            )
        else:
            previous = state["previous"]
        kube_gitops.pause(apis, owner)
        text = (
            f"paused {owner.label} ({owner.pause_text}) so that the rollback holds; resume it "
            "once the fix is merged (Resume GitOps in this thread)"
        )
        writer.record(
            row.id,
            kind=TimelineKind.GITOPS_PAUSED,
            summary=text,
            data={
                **data,
                "previous": previous,
                "follow_up": f"Resume GitOps ({owner.label}) once the fix is merged",
                "resume_command": resume_command(row.id),
            },
            update=_set_pause(state=PAUSED),
        )
        return text


class Notifier(Protocol):
    def rollback_changed(self, row: Rollback) -> None: ...

    def progress(self, row: Rollback, line: str) -> None: ...


class Writer(Recorder, Protocol):
    def principal(self, service: Service, user: str) -> Principal: ...

    def actor(self, service: Service, user: str) -> Actor: ...

    def refuse(
        self,
        *,
        service: str,
        actor: str,
        what: str,
        why: str,
        rollback_id: int | None = None,
        incident_id: int | None = None,
    ) -> None: ...


class GitOpsService:
    """Resume GitOps: one click in the thread (or the verb) once the fix is merged."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        uow: UnitOfWorkFactory,
        clock: Clock,
        apis: KubeApis,
        rollbacks: Writer,
        notifier: Notifier,
        apis_for: Callable[[Service], KubeApis] | None = None,
    ) -> None:
        self._catalog = catalog
        self._uow = uow
        self._clock = clock
        self._apis = apis
        self._apis_for = apis_for
        self._rollbacks = rollbacks
        self._notifier = notifier

    def resume(self, rollback_id: int, user: str) -> Reply:
        with self._uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=rollback_id)
        if row is None:
            return Reply.refused(f"There is no rollback {rid(rollback_id)}.")
        service = self._catalog.service(row.service)
        if service is None:
            return Reply.refused(f"{rid(rollback_id)} is for `{row.service}`, not in the catalog.")
        verdict = may_operate(service, self._rollbacks.principal(service, user))
        if not verdict:
            self._rollbacks.refuse(
                service=service.name,
                actor=user,
                what="resume gitops",
                why=verdict.reason,
                rollback_id=rollback_id,
                incident_id=row.incident_id,
            )
            return Reply.refused(f"Cannot resume GitOps for {rid(rollback_id)}: {verdict.reason}.")
        state = pause_state(row)
        owner = paused_owner(row)
        if owner is None:
            why = (
                f"it was already resumed by <@{state.get('resumed_by')}>"
                if state.get("state") == RESUMED
                else "this rollback paused no reconciliation"
            )
            return Reply.refused(f"Nothing to resume for {rid(rollback_id)}: {why}.")
        cluster = self._apis_for(service) if self._apis_for else self._apis
        apis = cluster.for_actor(self._rollbacks.actor(service, user))
        try:
            change = kube_gitops.resume(apis, owner, state.get("previous") or {})
        except ExecutionError as exc:
            return Reply.refused(f"Could not resume {owner.label}: {exc}")
        text = f"<@{user}> resumed {owner.label}: {change.summary}"
        self._rollbacks.record(
            rollback_id,
            kind=TimelineKind.GITOPS_RESUMED,
            summary=text,
            actor=user,
            data={"owner": owner.to_dict(), "restored": state.get("previous")},
            update=_set_pause(
                state=RESUMED, resumed_by=user, resumed_at=self._clock.now().isoformat()
            ),
        )
        with self._uow(read_only=True) as uow:
            fresh = uow.rollbacks.get(id=rollback_id)
        if fresh is not None:
            self._notifier.progress(fresh, text)
            self._notifier.rollback_changed(fresh)
        return Reply.success(
            f"{owner.label} resumed: it reconciles from Git again.", rollback_id=rollback_id
        )
