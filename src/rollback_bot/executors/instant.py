"""Instant rollback: ``kubectl rollout undo``, through the API, with a precondition.

The end state is exactly the one ``kubectl rollout undo`` produces (same target
choice, same template without ``pod-template-hash``, same annotations carried
across, same refusals), so people can reason about it with what they know.
Two things are better than kubectl: the patch carries the ``resourceVersion``
it was decided on, so a concurrent change answers 409 and the step re-reads and
re-decides instead of overwriting it (last writer wins is wrong mid-incident);
and the ConfigMaps the target revision ran with are restored from checkpoints.

One step, three round trips in the common case: GET the Deployment, LIST its
ReplicaSets by selector, PATCH. ConfigMaps add one GET each. What the undo
means is decided in ``executors.undo``; this module writes it, retries
conflicts and server errors, and confirms writes whose answer was lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from rollback_bot.catalog import Service
from rollback_bot.executors import kept_reads
from rollback_bot.executors.base import Plan, SnapshotStore, StepResult, moved_off_target
from rollback_bot.executors.undo import (
    Situation,
    checkpoint_for,
    configmap_lines,
    situation,
    undo_patch,
)
from rollback_bot.kube.client import JSON_PATCH, KubeApis, explain, is_retryable_status
from rollback_bot.kube.model import Actor, Change, ExecutionError, SnapshotRecord, Verification
from rollback_bot.kube.preview import build_preview
from rollback_bot.kube.revisions import (
    DEPLOYMENT_PATH,
    HASH_LABEL,
    Revision,
    configmaps_referenced,
    images_of,
    owned_replicasets,
    read_deployment,
    revision_number,
    revisions_from,
)
from rollback_bot.kube.rollout import rollout_status
from rollback_bot.kube.snapshots import (
    configmap_changes,
    read_configmap,
    restore_configmap,
    snapshot_records,
)

PAUSED_MESSAGE = (
    "you cannot rollback a paused deployment; resume it first with "
    "'kubectl rollout resume' and try again"
)


def _hash_of(template: dict[str, Any]) -> str | None:
    labels = (template.get("metadata") or {}).get("labels") or {}
    return labels.get(HASH_LABEL)


def _api_cause(err: BaseException) -> ApiException | None:
    if isinstance(err, ApiException):
        return err
    cause = err.__cause__
    return cause if isinstance(cause, ApiException) else None


def release_of(deployment: dict[str, Any]) -> tuple[int | None, str | None]:
    """The revision (its annotation) and images a Deployment runs: a plan's "from" side."""
    return revision_number(deployment), ", ".join(images_of(deployment["spec"]["template"])) or None


def running_release(apis: KubeApis, service: Service) -> tuple[int | None, str | None]:
    """What the service's Deployment runs now, in one read: ``release_of`` it.

    An approval only needs to know whether the release a person saw still runs;
    planning the whole rollback again for that reads the Deployment three times
    and every ReplicaSet twice. Kept (``kept_reads``) for the rollback this approval
    may start at once, whose checkpoint then reads only the ReplicaSets.
    """
    deployment = read_deployment(apis, service.namespace, service.deployment)
    kept_reads.keep(_approved_key(service), deployment)
    return release_of(deployment)


def _kept_key(service: Service) -> tuple[str, str, str]:
    return ("deployment", service.namespace, service.deployment)


def _approved_key(service: Service) -> tuple[str, str, str]:
    return ("deployment seen by the approval", service.namespace, service.deployment)


class InstantExecutor:
    strategy = "instant"

    def __init__(
        self,
        apis: KubeApis,
        store: SnapshotStore,
        *,
        conflict_retries: int = 3,
        server_retries: int = 3,
        backoff_seconds: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.apis = apis
        self.store = store
        self.conflict_retries = conflict_retries
        self.server_retries = server_retries
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep

    # -- reading and deciding ------------------------------------------------

    def _read(
        self, service: Service, deployment: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], list[Revision]]:
        if deployment is None:
            deployment = read_deployment(self.apis, service.namespace, service.deployment)
        return deployment, revisions_from(owned_replicasets(self.apis, deployment))

    def _situation(
        self,
        service: Service,
        *,
        to_revision: int | None,
        target_rs: str | None,
        read: tuple[dict[str, Any], list[Revision]] | None = None,
    ) -> Situation:
        deployment, revisions = read or self._read(service)
        return situation(
            self.apis,
            self.store,
            service,
            deployment,
            revisions,
            to_revision=to_revision,
            target_rs=target_rs,
        )

    # -- Executor -------------------------------------------------------------

    def plan(self, service: Service, *, to_revision: int | None = None) -> Plan:
        s = self._situation(service, to_revision=to_revision, target_rs=None)
        extra = []
        missing = set(s.target.configmaps) - set(checkpoint_for(self.store, service, s.target))
        if missing:
            extra.append(
                f"no checkpoint of configmap {', '.join(sorted(missing))} for revision "
                f"{s.target.number}: its current content stays"
            )
        preview = build_preview(
            s.deployment,
            s.current,
            s.target,
            configmap_lines=configmap_lines(s),
            extra_warnings=extra,
        )
        changes = preview.changes
        if s.at_target:
            changes = (f"already at revision {s.target.number}: the template is unchanged",)
            changes += tuple(configmap_lines(s))
        running, from_image = release_of(s.deployment)
        from_number = running or (s.current.number if s.current else None)
        return Plan(
            strategy=self.strategy,
            from_revision=from_number,
            to_revision=s.target.number,
            from_image=from_image,
            to_image=s.target.image,
            changes=changes,
            warnings=preview.warnings,
            detail={
                "namespace": s.namespace,
                "deployment": s.name,
                "target_replicaset": s.target.replicaset,
                "target_images": list(s.target.images),
                "from_replicaset": s.current.replicaset if s.current else None,
                "from_template_hash": _hash_of(s.current.template) if s.current else None,
                "target_template_hash": _hash_of(s.target.template),
                "resource_version": s.deployment["metadata"].get("resourceVersion"),
                "restore_configmaps": sorted(s.restores),
                "noop": s.at_target and not s.restores,
            },
        )

    def snapshot(self, service: Service) -> list[SnapshotRecord]:
        """Read and store a checkpoint of the Deployment and its ConfigMaps.

        Right before the first step (``kept_reads``) it reads what that step reads,
        the Deployment (unless the approval that started it just did) and its
        ReplicaSets, and keeps it for the step.
        """
        if kept_reads.keeping():
            read = self._read(service, kept_reads.take(_approved_key(service)))
            kept_reads.keep(_kept_key(service), read)
            deployment = read[0]
        else:
            deployment = read_deployment(self.apis, service.namespace, service.deployment)
        names = configmaps_referenced(deployment["spec"]["template"])
        configmaps = {n: read_configmap(self.apis, service.namespace, n) for n in names}
        records = snapshot_records(deployment, configmaps)
        self.store.save(records)
        return records

    def apply_step(
        self, service: Service, plan: Plan, *, step: int, actor: Actor, drill: bool
    ) -> StepResult:
        writer = self.apis.for_actor(actor)
        done: list[Change] = []
        unsure: list[Change] = []  # writes whose answer was lost: applied or not?
        conflicts = failures = 0
        while True:
            try:
                return self._attempt(service, plan, step, writer, drill, done, unsure)
            except (ApiException, ExecutionError) as err:
                api = _api_cause(err)
                if api is None:
                    if not done:
                        raise
                    raise self._with_progress(err, done) from err
                pending = getattr(api, "pending_change", None)
                if api.status == 409 and conflicts < self.conflict_retries:
                    conflicts += 1
                    # A real deployment controller writes status (bumping resourceVersion)
                    # for as long as a rollout or scale settles: an immediate re-read would
                    # lose the race again, so conflicts wait as server errors do.
                    self.sleep(self.backoff_seconds * 2 ** (conflicts - 1))
                    continue
                if is_retryable_status(api) and failures < self.server_retries:
                    failures += 1
                    if pending is not None:
                        unsure.append(pending)
                    self.sleep(self.backoff_seconds * 2 ** (failures - 1))
                    continue
                landed = self._patch_landed(service, plan, api)
                raise self._give_up(service, api, done, conflicts, failures, landed) from err

    def _attempt(
        self,
        service: Service,
        plan: Plan,
        step: int,
        writer: KubeApis,
        drill: bool,
        done: list[Change],
        unsure: list[Change],
    ) -> StepResult:
        if drill:
            done.clear()  # a dry run changed nothing; the next try lists its own
        kept = kept_reads.take(_kept_key(service))  # the first try only: retries read afresh
        s = self._situation(
            service,
            to_revision=plan.to_revision,
            target_rs=plan.detail.get("target_replicaset"),
            read=kept,
        )
        self._confirm_lost_answers(s, done, unsure)
        if s.deployment["spec"].get("paused"):
            raise ExecutionError(PAUSED_MESSAGE)
        if not s.at_target:
            self._refuse_drift(s, plan)
        # A kept read with no ConfigMaps is the checkpoint the move to executing just filed.
        if not drill and (kept is None or s.configmaps):
            self.store.save(snapshot_records(s.deployment, s.configmaps))
        for name, body in s.restores.items():
            done.append(self._restore(writer, s, name, body, drill))
        if not s.at_target:
            done.append(self._patch(writer, s, drill, plan.detail.get("change_cause")))
        return self._finished(s, step, done, drill)

    @staticmethod
    def _confirm_lost_answers(s: Situation, done: list[Change], unsure: list[Change]) -> None:
        """A write that failed with a server error may still have landed; the re-read tells."""
        for change in unsure:
            landed = s.at_target if change.kind == "Deployment" else change.name not in s.restores
            if landed:
                summary = f"{change.summary} (confirmed after its answer was lost)"
                done.append(
                    Change(change.verb, change.kind, change.namespace, change.name, summary)
                )
        unsure.clear()

    def _refuse_drift(self, s: Situation, plan: Plan) -> None:
        """Stop when the Deployment moved to a third version after the plan was approved."""
        planned = plan.detail.get("from_replicaset")
        if planned is None or (s.current is not None and s.current.replicaset == planned):
            return
        now = f"revision {s.current.number}" if s.current else "a template with no revision yet"
        images = ", ".join(images_of(s.deployment["spec"]["template"]))
        raise ExecutionError(
            f"deployment {s.namespace}/{s.name} changed since the plan was made: it now runs "
            f"{now} ({images}), not revision {plan.from_revision}; nothing was rolled back, "
            "plan again"
        )

    def _restore(
        self, writer: KubeApis, s: Situation, name: str, body: dict[str, Any], drill: bool
    ) -> Change:
        try:
            return restore_configmap(
                writer,
                namespace=s.namespace,
                name=name,
                current=s.configmaps.get(name),
                target=body,
                dry_run=drill,
            )
        except ApiException as exc:
            summary = "; ".join(configmap_changes(name, s.configmaps.get(name), body))
            exc.pending_change = Change("restored", "ConfigMap", s.namespace, name, summary)  # type: ignore[attr-defined]
            raise

    def _patch(self, writer: KubeApis, s: Situation, drill: bool, cause: str | None) -> Change:
        target = s.target
        ops = undo_patch(s, cause)
        summary = f"template of revision {target.number} ({target.image})"
        change = Change("patched", "Deployment", s.namespace, s.name, summary, dry_run=drill)
        try:
            writer.call_raw(
                "PATCH",
                DEPLOYMENT_PATH,
                {"namespace": s.namespace, "name": s.name},
                {"dryRun": "All" if drill else None},
                body=ops,
                content_type=JSON_PATCH,
            )
        except ApiException as exc:
            exc.pending_change = change  # type: ignore[attr-defined]
            raise
        return change

    def _finished(self, s: Situation, step: int, done: list[Change], drill: bool) -> StepResult:
        where = f"deployment {s.namespace}/{s.name}"
        if not done:
            message = f"{where} is already at revision {s.target.number}; nothing to do"
        elif s.at_target and not any(c.kind == "Deployment" for c in done):
            restored = ", ".join(c.name for c in done if c.kind == "ConfigMap")
            message = (
                f"{where} already runs revision {s.target.number}; configmap {restored} restored"
            )
        else:
            message = f"rolled back {where} to revision {s.target.number} ({s.target.image})"
        if drill:
            message = "drill, nothing changed: " + message.replace("rolled back", "would roll back")
        return StepResult(
            step=step, finished=True, changes=tuple(done), message=message, noop=not done
        )

    def _patch_landed(self, service: Service, plan: Plan, exc: ApiException) -> bool | None:
        """After a failed Deployment patch whose answer may be lost: did it land?"""
        pending = getattr(exc, "pending_change", None)
        if pending is None or pending.kind != "Deployment" or exc.status == 409:
            return False  # refused outright, or never attempted
        try:
            live = read_deployment(self.apis, service.namespace, service.deployment)
        except ExecutionError:
            return None
        wanted = plan.detail.get("target_images")
        return wanted is not None and list(images_of(live["spec"]["template"])) == list(wanted)

    def _with_progress(self, err: BaseException, done: list[Change]) -> ExecutionError:
        retryable = isinstance(err, ExecutionError) and err.retryable
        if not done:
            return err if isinstance(err, ExecutionError) else ExecutionError(str(err))
        written = ", ".join(f"{c.kind.lower()}/{c.name} {c.verb}" for c in done)
        return ExecutionError(f"{err} (already done: {written})", retryable=retryable)

    def _give_up(
        self,
        service: Service,
        exc: ApiException,
        done: list[Change],
        conflicts: int,
        failures: int,
        landed: bool | None,
    ) -> ExecutionError:
        pending = getattr(exc, "pending_change", None)
        what = f"deployment {service.namespace}/{service.deployment}"
        if pending is not None:
            what = f"{pending.kind.lower()} {pending.namespace}/{pending.name}"
        if exc.status == 409:
            base = ExecutionError(
                f"{what} kept changing while rolling back ({conflicts + 1} conflicting writes); "
                "stopped so as not to overwrite someone else's change",
                retryable=True,
            )
        else:
            base = explain(exc, what)
            if failures:
                base = ExecutionError(f"{base} (after {failures + 1} tries)", retryable=True)
        state = {
            True: "the deployment patch was applied nonetheless (checked by re-reading it)",
            False: "the deployment was not patched",
            None: "the deployment patch may or may not have been applied; re-plan to see",
        }[landed]
        if done:
            written = ", ".join(f"{c.kind.lower()}/{c.name} {c.verb}" for c in done)
            return ExecutionError(f"{base}; {written}; {state}", retryable=base.retryable)
        return ExecutionError(f"{base}; {state}", retryable=base.retryable)

    def verify(self, service: Service, plan: Plan, *, drill: bool) -> Verification:
        deployment = read_deployment(self.apis, service.namespace, service.deployment)
        if drill:
            return Verification(True, True, "drill: nothing was changed, nothing to verify")
        moved = moved_off_target(plan, deployment["spec"]["template"], service.target_ref)
        if moved is not None:
            return moved
        return rollout_status(deployment)
