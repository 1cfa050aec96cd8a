"""Helm release rollback: the real ``helm rollback``, with the bot's plan, drill and checks.

The plan reads the release's history from Helm's Secrets (``kube.helm_releases``) and
shows what changes between the revision running now and the target: chart, app version
and every value (defaults with the user's values over them), secret-looking ones
redacted. The step re-reads the history, refuses when the release moved since the plan
(someone upgraded it: re-plan), and runs ``helm rollback <release> <N> --wait --timeout``
(``--dry-run`` for a drill), which leaves Helm's own record exactly as a rollback typed by
hand does: a new revision, described "Rollback to N". The change is recorded with that
new revision. Verification reads the history again: the newest revision must be the
target's content, ``deployed``.
"""

from __future__ import annotations

import json
from typing import Any

from rollback_bot import redaction
from rollback_bot.catalog import Service
from rollback_bot.executors.base import Plan, StepResult
from rollback_bot.executors.helm_cli import HelmCli
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.helm_releases import HelmRevision, flatten, read_history
from rollback_bot.kube.model import Actor, Change, ExecutionError, SnapshotRecord, Verification

KIND = "HelmRelease"
_MAX_VALUE_LINES = 40
_UNSET = "(unset)"


def _shown(path: str, value: Any) -> str:
    leaf = path.rsplit(".", 1)[-1]
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if redaction.current().secret_name(leaf) or redaction.current().secret_name(path):
        return redaction.MARK
    return redaction.redact_text(text)


def values_diff(current: HelmRevision, target: HelmRevision) -> list[str]:
    """``values.image.tag: 2.0-crash -> 1.0`` for every value that differs, secrets hidden."""
    now, then = flatten(current.effective_values), flatten(target.effective_values)
    lines = []
    for path in sorted(set(now) | set(then)):
        before, after = now.get(path, _UNSET), then.get(path, _UNSET)
        if before == after:
            continue
        shown_before = _UNSET if path not in now else _shown(path, before)
        shown_after = _UNSET if path not in then else _shown(path, after)
        if shown_before == shown_after == redaction.MARK:
            lines.append(f"values.{path}: changed ({redaction.MARK})")
        else:
            lines.append(f"values.{path}: {shown_before} -> {shown_after}")
    if len(lines) > _MAX_VALUE_LINES:
        rest = len(lines) - _MAX_VALUE_LINES
        lines = [*lines[:_MAX_VALUE_LINES], f"values: {rest} more change(s) not shown"]
    return lines


def release_changes(current: HelmRevision, target: HelmRevision) -> list[str]:
    lines = []
    if current.chart_ref != target.chart_ref:
        lines.append(f"chart: {current.chart_ref} -> {target.chart_ref}")
    if current.app_version != target.app_version:
        lines.append(
            f"app version: {current.app_version or _UNSET} -> {target.app_version or _UNSET}"
        )
    lines += values_diff(current, target)
    if current.digest != target.digest and current.manifest != target.manifest and not lines:
        lines.append("templates: the chart's templates differ (same chart version and values)")
    return lines


def strategy_refusal(service: Service, strategy: str) -> ExecutionError | None:
    """A Helm release is rolled back by helm alone, a Deployment never by helm."""
    if service.helm is not None and strategy != "helm":
        return ExecutionError(
            f"{service.label} is Helm release {service.namespace}/{service.helm.release}: it is "
            f"rolled back with helm rollback, not the {strategy} strategy; leave --strategy out"
        )
    if service.helm is None and strategy == "helm":
        return ExecutionError(
            f"{service.label} is not a Helm release (no helm: in the catalog): "
            "the helm strategy rolls back Helm releases only"
        )
    return None


def describe(rev: HelmRevision) -> str:
    return f"revision {rev.number} ({rev.chart_ref}, app {rev.app_version or '?'}, {rev.status})"


class HelmExecutor:
    strategy = "helm"

    def __init__(self, apis: KubeApis, helm: HelmCli | None = None) -> None:
        self.apis = apis
        self.helm = helm or HelmCli()

    @staticmethod
    def _release(service: Service) -> str:
        if service.helm is None:
            raise ExecutionError(
                f"{service.label} is not a Helm release (no helm: in the catalog); "
                "the helm strategy rolls back Helm releases only"
            )
        return service.helm.release

    def _history(self, service: Service) -> list[HelmRevision]:
        return read_history(self.apis, service.namespace, self._release(service))

    # -- Executor -------------------------------------------------------------

    def plan(self, service: Service, *, to_revision: int | None = None) -> Plan:
        history = self._history(service)
        current = history[-1]
        release = self._release(service)
        if to_revision is None:  # helm rollback's own default: the previous revision
            if len(history) < 2:
                raise ExecutionError(
                    f"helm release {service.namespace}/{release} has one revision only: "
                    "there is nothing to roll back to"
                )
            target = history[-2]
        else:
            found = next((r for r in history if r.number == to_revision), None)
            if found is None:
                listed = ", ".join(str(r.number) for r in history)
                raise ExecutionError(
                    f"revision {to_revision} is not in the history of helm release "
                    f"{service.namespace}/{release} (kept: {listed})"
                )
            target = found
        noop = target.digest == current.digest and current.status == "deployed"
        changes = tuple(release_changes(current, target))
        if noop:
            changes = (f"already at the content of revision {target.number}: nothing changes",)
        warnings = []
        if current.status.startswith("pending"):
            warnings.append(
                f"the release is {current.status} (revision {current.number}): another helm "
                "operation may be running; helm rollback will refuse until it ends"
            )
        if target.status == "failed":
            warnings.append(f"revision {target.number} itself failed when it was deployed")
        warnings.append(
            "helm rollback re-applies the chart's objects of the target revision; "
            "PersistentVolumes, databases and hooks' side effects are not rolled back"
        )
        assert service.helm is not None
        return Plan(
            strategy=self.strategy,
            from_revision=current.number,
            to_revision=target.number,
            from_image=current.chart_ref,
            to_image=target.chart_ref,
            changes=changes,
            warnings=tuple(warnings),
            detail={
                "namespace": service.namespace,
                "release": release,
                "from_status": current.status,
                "from_description": current.description,
                "target_status": target.status,
                "target_description": target.description,
                "target_app_version": target.app_version,
                "from_template_hash": current.digest,
                "target_template_hash": target.digest,
                "timeout_seconds": service.helm.timeout_seconds,
                "wait": service.helm.wait,
                "noop": noop,
            },
        )

    def snapshot(self, service: Service) -> list[SnapshotRecord]:
        """Nothing to checkpoint: Helm keeps every revision it can roll back to."""
        self._history(service)  # fail early when the release cannot be read
        return []

    def apply_step(
        self, service: Service, plan: Plan, *, step: int, actor: Actor, drill: bool
    ) -> StepResult:
        release = self._release(service)
        where = f"helm release {service.namespace}/{release}"
        history = self._history(service)
        current = history[-1]
        target_number = int(plan.to_revision or 0)
        target = next((r for r in history if r.number == target_number), None)
        if target is None:
            raise ExecutionError(
                f"revision {target_number} is no longer in the history of {where} "
                "(history limit?); nothing was rolled back, plan again"
            )
        if current.digest == target.digest and current.status == "deployed":
            return StepResult(
                step=step,
                finished=True,
                message=f"{where} already runs the content of revision {target.number}; "
                "nothing to do",
                noop=True,
            )
        if plan.from_revision is not None and current.number != plan.from_revision:
            raise ExecutionError(
                f"{where} changed since the plan was made: it is now at {describe(current)}, "
                f"not revision {plan.from_revision}; nothing was rolled back, plan again"
            )
        timeout = int(plan.detail.get("timeout_seconds") or 300)
        wait = bool(plan.detail.get("wait", True))
        try:
            self.helm.rollback(
                release,
                target.number,
                namespace=service.namespace,
                timeout_seconds=timeout,
                wait=wait,
                dry_run=drill,
                actor=actor,
            )
        except ExecutionError as exc:
            if drill:
                raise
            raise ExecutionError(f"{exc}{self._after_failure(service)}") from None
        if drill:
            summary = f"would roll back to {describe(target)} (helm rollback --dry-run)"
            change = Change("rolled back", KIND, service.namespace, release, summary, dry_run=True)
            return StepResult(
                step=step,
                finished=True,
                changes=(change,),
                message=f"drill, nothing changed: helm rollback --dry-run of {where} to "
                f"revision {target.number} ({target.chart_ref}) succeeded",
            )
        new = self._history(service)[-1]
        summary = (
            f"to revision {target.number} ({target.chart_ref}): new Helm revision {new.number} "
            f"({new.status}, {new.description or 'no description'})"
        )
        change = Change("rolled back", KIND, service.namespace, release, summary)
        return StepResult(
            step=step,
            finished=True,
            changes=(change,),
            message=f"rolled back {where} to revision {target.number} ({target.chart_ref}) "
            f"as Helm revision {new.number}",
        )

    def _after_failure(self, service: Service) -> str:
        """What Helm recorded after a failed rollback, for the message."""
        try:
            newest = self._history(service)[-1]
        except ExecutionError:
            return ""
        return f"; the release is now at {describe(newest)}: {newest.description}"

    def verify(self, service: Service, plan: Plan, *, drill: bool) -> Verification:
        if drill:
            return Verification(True, True, "drill: nothing was changed, nothing to verify")
        release = self._release(service)
        where = f"helm release {service.namespace}/{release}"
        newest = self._history(service)[-1]
        wanted = plan.detail.get("target_template_hash")
        if wanted and newest.digest != wanted:
            return Verification(
                False,
                True,
                f"{where} no longer runs the target: it is at {describe(newest)} "
                "(changed again after the rollback?)",
            )
        if newest.status == "deployed":
            return Verification(True, True, f"{where} at {describe(newest)}")
        if newest.status.startswith("pending"):
            return Verification(False, False, f"{where} is {newest.status}")
        return Verification(
            False,
            True,
            f"{where} is {newest.status} at revision {newest.number}: {newest.description}",
        )
