"""Instant rollback of a StatefulSet or DaemonSet: ``kubectl rollout undo``, with a precondition.

The end state is kubectl's: the target ControllerRevision's ``data`` applied to the
workload as a strategic-merge patch (kubectl's choice of target, its refusals in its
words). As for Deployments, the patch carries the ``resourceVersion`` the step decided
on, so a concurrent change answers 409 and the step re-reads and re-decides; the target
is pinned by ControllerRevision name when the plan is made, so a renumbering between
plan and approval does not move it. One step: GET the workload, LIST its
ControllerRevisions, PATCH. Verification is ``kubectl rollout status`` for the kind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from rollback_bot.catalog import Service
from rollback_bot.executors.base import Plan, SnapshotStore, StepResult, moved_off_target
from rollback_bot.kube.client import KubeApis, explain, is_retryable_status
from rollback_bot.kube.model import Actor, Change, ExecutionError, SnapshotRecord, Verification
from rollback_bot.kube.revisions import Revision, images_of, same_template
from rollback_bot.kube.snapshots import _trimmed
from rollback_bot.kube.workloads import (
    KIND_NAMES,
    NoRevision,
    build_workload_preview,
    choose_workload_target,
    live_revision,
    owned_revisions,
    patch_workload,
    read_workload,
    revisions_of,
    undo_patch,
    workload_status,
)


@dataclass
class _Read:
    workload: dict[str, Any]
    records: list[dict[str, Any]]  # the ControllerRevisions, as read
    revisions: list[Revision]
    target: Revision
    current: Revision | None

    @property
    def at_target(self) -> bool:
        live = self.workload["spec"]["template"]
        return same_template(self.target.template, live)

    def data_of(self, revision: Revision) -> dict[str, Any]:
        found = next(r for r in self.records if r["metadata"]["name"] == revision.replicaset)
        return dict(found.get("data") or {})


class WorkloadExecutor:
    strategy = "instant"

    def __init__(
        self,
        apis: KubeApis,
        store: SnapshotStore,
        kind: str,
        *,
        conflict_retries: int = 3,
        server_retries: int = 3,
        backoff_seconds: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if kind not in KIND_NAMES:
            raise ValueError(f"not a workload kind: {kind}")
        self.apis = apis
        self.store = store
        self.kind = kind
        self.conflict_retries = conflict_retries
        self.server_retries = server_retries
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep

    def _where(self, service: Service) -> str:
        return service.target_ref

    def _read(self, service: Service, *, to_revision: int | None, pinned: str | None) -> _Read:
        workload = read_workload(self.apis, self.kind, service.namespace, service.target_name)
        records = owned_revisions(self.apis, self.kind, workload)
        revisions = revisions_of(records, workload, self.kind)
        target = next((r for r in revisions if r.replicaset == pinned), None) if pinned else None
        if target is None and pinned:
            raise ExecutionError(
                f"controllerrevision {pinned} of {self._where(service)} is gone (history "
                "limit?): nothing was rolled back, plan again"
            )
        if target is None:
            try:
                target = choose_workload_target(revisions, to_revision)
            except NoRevision as exc:
                raise ExecutionError(str(exc)) from None
        return _Read(workload, records, revisions, target, live_revision(revisions, workload))

    # -- Executor -------------------------------------------------------------

    def plan(self, service: Service, *, to_revision: int | None = None) -> Plan:
        r = self._read(service, to_revision=to_revision, pinned=None)
        preview = build_workload_preview(self.kind, r.workload, r.current, r.target)
        changes = preview.changes
        if r.at_target:
            changes = (f"already at revision {r.target.number}: the template is unchanged",)
        live = r.workload["spec"]["template"]
        return Plan(
            strategy=self.strategy,
            from_revision=r.current.number if r.current else None,
            to_revision=r.target.number,
            from_image=", ".join(images_of(live)) or None,
            to_image=r.target.image,
            changes=changes,
            warnings=preview.warnings,
            detail={
                "kind": self.kind,
                "namespace": service.namespace,
                self.kind: service.target_name,
                "cluster": service.cluster,
                "target_controllerrevision": r.target.replicaset,
                "from_controllerrevision": r.current.replicaset if r.current else None,
                "target_images": list(r.target.images),
                "resource_version": r.workload["metadata"].get("resourceVersion"),
                "noop": r.at_target,
            },
        )

    def snapshot(self, service: Service) -> list[SnapshotRecord]:
        workload = read_workload(self.apis, self.kind, service.namespace, service.target_name)
        records = [self._record(workload)]
        self.store.save(records)
        return records

    def _record(self, workload: dict[str, Any]) -> SnapshotRecord:
        meta = workload["metadata"]
        return SnapshotRecord(self.kind, meta["namespace"], meta["name"], None, _trimmed(workload))

    def apply_step(
        self, service: Service, plan: Plan, *, step: int, actor: Actor, drill: bool
    ) -> StepResult:
        writer = self.apis.for_actor(actor)
        conflicts = failures = 0
        while True:
            try:
                return self._attempt(service, plan, step, writer, drill)
            except ApiException as exc:
                if exc.status == 409 and conflicts < self.conflict_retries:
                    conflicts += 1
                    self.sleep(self.backoff_seconds * 2 ** (conflicts - 1))
                    continue
                if is_retryable_status(exc) and failures < self.server_retries:
                    failures += 1
                    self.sleep(self.backoff_seconds * 2 ** (failures - 1))
                    continue
                if exc.status == 409:
                    raise ExecutionError(
                        f"{self._where(service)} kept changing while rolling back "
                        f"({conflicts + 1} conflicting writes); stopped so as not to overwrite "
                        "someone else's change; it was not patched",
                        retryable=True,
                    ) from exc
                raise explain(exc, self._where(service)) from exc

    def _attempt(
        self, service: Service, plan: Plan, step: int, writer: KubeApis, drill: bool
    ) -> StepResult:
        r = self._read(
            service,
            to_revision=plan.to_revision,
            pinned=plan.detail.get("target_controllerrevision"),
        )
        where = self._where(service)
        if r.at_target:
            return StepResult(
                step=step,
                finished=True,
                message=f"{where} is already at revision {r.target.number}; nothing to do",
                noop=True,
            )
        planned = plan.detail.get("from_controllerrevision")
        if planned is not None and (r.current is None or r.current.replicaset != planned):
            now = f"revision {r.current.number}" if r.current else "a template with no revision"
            raise ExecutionError(
                f"{where} changed since the plan was made: it now runs {now} "
                f"({', '.join(images_of(r.workload['spec']['template']))}), not revision "
                f"{plan.from_revision}; nothing was rolled back, plan again"
            )
        if not drill:
            self.store.save([self._record(r.workload)])
        body = undo_patch(r.workload, r.data_of(r.target))
        patch_workload(
            writer, self.kind, service.namespace, service.target_name, body, dry_run=drill
        )
        summary = f"template of revision {r.target.number} ({r.target.image})"
        change = Change(
            "patched", KIND_NAMES[self.kind], service.namespace, service.target_name, summary, drill
        )
        message = f"rolled back {where} to revision {r.target.number} ({r.target.image})"
        if drill:
            message = "drill, nothing changed: " + message.replace("rolled back", "would roll back")
        return StepResult(step=step, finished=True, changes=(change,), message=message)

    def verify(self, service: Service, plan: Plan, *, drill: bool) -> Verification:
        workload = read_workload(self.apis, self.kind, service.namespace, service.target_name)
        if drill:
            return Verification(True, True, "drill: nothing was changed, nothing to verify")
        moved = moved_off_target(plan, workload["spec"]["template"], self._where(service))
        if moved is not None:
            return moved
        return workload_status(self.kind, workload)
