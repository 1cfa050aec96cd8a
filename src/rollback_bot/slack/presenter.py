"""Turns what the database and the cluster say into view models.

The only place that decides what a person sees: which buttons a rollback
message carries, which revision is "last stable", how a plan's change lines
read. The Block Kit builders in ``rollback_bot.slack.ui`` then lay the views out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from cachetools import TTLCache

from rollback_bot.catalog import Catalog, Service
from rollback_bot.clock import Clock
from rollback_bot.executors.base import Plan
from rollback_bot.ids import format_incident_id, format_rollback_id
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.revisions import Revision, list_revisions
from rollback_bot.rollbacks import lifecycle
from rollback_bot.rollbacks.gitops import paused_owner
from rollback_bot.rollbacks.lifecycle import State
from rollback_bot.rollbacks.targets import REVISION_STRATEGIES, Known, Targets
from rollback_bot.slack.ui import views
from rollback_bot.storage.models import AlertGroup, Approval, Incident, Rollback
from rollback_bot.storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)


class RevisionCache:
    """Revisions per service, read from the cluster at most every few seconds.

    Alert messages show the current and last stable revision; in a storm the
    same service's message is rendered many times a minute and one read of
    its ReplicaSets serves them all.
    """

    def __init__(
        self,
        apis: KubeApis,
        *,
        ttl_seconds: float = 5.0,
        read: Callable[[Service], list[Revision]] | None = None,
    ) -> None:
        self._apis = apis
        # Any kind, any cluster (``kube.workloads.service_revisions`` on the service's client).
        self._read = read or (lambda s: list_revisions(self._apis, s.namespace, s.deployment))
        # Bounded so a catalog edit that renames services cannot grow it without end.
        self._cache: TTLCache[str, list[Revision]] = TTLCache(maxsize=1024, ttl=ttl_seconds)
        # cachetools caches are not thread-safe; alert messages render on many threads.
        self._lock = threading.Lock()

    def get(self, service: Service) -> list[Revision]:
        with self._lock:
            hit = self._cache.get(service.name)
        if hit is not None:
            return hit
        try:
            revisions = self._read(service)
        except Exception as exc:  # an unreachable cluster must not stop the alert message
            log.warning("cannot read revisions of %s: %s", service.label, exc)
            revisions = []
        with self._lock:
            self._cache[service.name] = revisions
        return revisions

    def forget(self, service: str) -> None:
        with self._lock:
            self._cache.pop(service, None)


def _where(environment: str, service: Service | None) -> str:
    """``production``, or ``production @east`` for a service on a named cluster."""
    return f"{environment} @{service.cluster}" if service and service.cluster else environment


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def changes_of(plan: Plan) -> tuple[views.Change, ...]:
    """Plan lines read "what: before -> after"; anything else is shown whole."""
    out = []
    for line in plan.changes:
        what, _, rest = line.partition(": ")
        before, arrow, after = rest.partition(" -> ")
        if arrow:
            out.append(views.Change(what, before or None, after or None))
        else:
            out.append(views.Change(line, None, None))
    return tuple(out)


def who_may_approve(service: Service) -> str:
    names = [f"<@{u}>" for u in service.policy.approvers.users] + [
        f"<!subteam^{g}>" for g in service.policy.approvers.usergroups
    ]
    return ", ".join(names) or "nobody (policy.approvers is empty)"


def _expiry_warning(row: Rollback, service: Service | None) -> tuple[str, ...]:
    """A request waiting for approval says until when it can be approved."""
    if service is None or row.state != State.REQUESTED or row.created_at is None:
        return ()
    ttl = service.policy.approval_ttl_seconds
    ends = row.created_at + timedelta(seconds=ttl)
    return (
        f"Approvals expire at {ends:%H:%M} UTC ({ttl // 60} min after the request); "
        "after that, request the rollback again.",
    )


class Presenter:
    def __init__(
        self,
        *,
        catalog: Catalog,
        uow: UnitOfWorkFactory,
        clock: Clock,
        revisions: RevisionCache,
        targets: Targets,
    ) -> None:
        self._targets = targets
        self._catalog = catalog
        self._uow = uow
        self._clock = clock
        self.revisions = revisions

    def rollback(self, rollback_id: int) -> views.RollbackView | None:
        with self._uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=rollback_id)
            if row is None:
                return None
            approvals = uow.approvals.list_for(rollback_id=rollback_id)
        return self.rollback_view(row, approvals)

    def rollback_view(
        self, row: Rollback, approvals: list[Approval] | None = None
    ) -> views.RollbackView:
        approvals = approvals or []
        service = self._catalog.service(row.service)
        plan = Plan.from_dict(row.plan) if row.plan else None
        state = State(row.state)
        denial = next((a for a in approvals if a.decision == "deny"), None)
        steps = len(plan.steps) if plan and plan.steps else None
        step = min(row.step + 1, steps) if steps else None
        percent = plan.steps[min(row.step, steps - 1)] if plan and steps else None
        flag = (plan.detail.get("flag") if plan else None) if row.strategy == "flag" else None
        paused = paused_owner(row)
        return views.RollbackView(
            rollback_id=row.id,
            service=row.service,
            environment=_where(row.environment, service),
            strategy=row.strategy,
            state=state,
            requested_by=row.requested_by,
            incident_id=row.incident_id,
            reason=row.reason or None,
            from_revision=_int(row.from_revision),
            from_image=row.from_image,
            to_revision=_int(row.to_revision),
            to_image=row.to_image,
            approvers=tuple(a.actor for a in approvals if a.decision == "approve"),
            approvals_required=row.approvals_required,
            may_approve=who_may_approve(service) if service else None,
            changes=changes_of(plan) if plan else (),
            warnings=(plan.warnings if plan else ()) + _expiry_warning(row, service),
            step=step,
            steps=steps,
            canary_percent=percent,
            drill=row.drill,
            automatic=row.automatic,
            trigger=(plan.detail.get("trigger") if plan else None),
            countdown_ends_at=row.deadline_at if state is State.SCHEDULED else None,
            error=row.error,
            denied_by=denial.actor if denial else None,
            deny_reason=denial.reason if denial else None,
            started_at=row.created_at,
            finished_at=row.finished_at,
            flag=flag,
            gitops_paused=paused.label if paused else None,
            actions=views.actions_for(
                state,
                _moves_for(state, row.strategy),
                flag=row.strategy == "flag",
                incident=row.incident_id is not None,
                gitops_paused=paused is not None,
            ),
        )

    def preview(
        self,
        service: Service,
        plan: Plan,
        *,
        approvals: int,
        drill: bool,
        reason: str,
        metadata: str,
    ) -> views.RequestPreview:
        return views.RequestPreview(
            service=service.name,
            environment=_where(service.environment, service),
            strategy=plan.strategy,
            current_revision=plan.from_revision,
            current_image=plan.from_image,
            target_revision=plan.to_revision,
            target_image=plan.to_image,
            private_metadata=metadata,
            changes=changes_of(plan),
            warnings=plan.warnings,
            approvals_required=approvals,
            must_approve=who_may_approve(service) if approvals else None,
            drill=drill,
            reason=reason or None,
            target_stable=bool(plan.detail.get("target_stable")),
            target_known=plan.detail.get("target_known"),
            known_bad=plan.detail.get("known_bad"),
        )

    def alert_group(self, group_id: int) -> views.AlertGroupView | None:
        with self._uow(read_only=True) as uow:
            group = uow.alert_groups.get(id=group_id)
            if group is None:
                return None
            incident = uow.incidents.get(id=group.incident_id) if group.incident_id else None
            rollbacks = (
                uow.rollbacks.list_for_incident(incident_id=group.incident_id)
                if group.incident_id
                else []
            )
            latest = max(rollbacks, key=lambda r: r.id) if rollbacks else None
            approvals = uow.approvals.list_for(rollback_id=latest.id) if latest else []
        return self.alert_group_view(group, incident=incident, latest=latest, approvals=approvals)

    def alert_group_view(
        self,
        group: AlertGroup,
        *,
        incident: Incident | None = None,
        latest: Rollback | None = None,
        approvals: list[Approval] | None = None,
    ) -> views.AlertGroupView:
        service = self._catalog.service(group.service) if group.service else None
        current = stable = None
        if service is not None:
            revisions = self.revisions.get(service)
            current = revisions[-1] if revisions else None
            stable = self.last_stable(service, revisions)
        annotations = group.annotations or {}
        links = group.links or {}
        resolved = group.status == "resolved"
        active = latest is not None and State(latest.state).is_active
        mitigated = incident is not None and incident.state in ("mitigated", "resolved")
        return views.AlertGroupView(
            group_id=group.id,
            alertname=group.alertname,
            severity=group.severity,
            status="resolved" if resolved else "firing",
            firing_count=group.firing_count,
            total_count=group.total_count,
            first_seen=group.first_seen,
            last_seen=group.last_seen,
            incident_id=group.incident_id,
            service=group.service,
            environment=service.environment if service else None,
            cluster=(service.cluster if service else None) or (group.labels or {}).get("cluster"),
            resolved_after=(group.resolved_at - group.first_seen) if group.resolved_at else None,
            summary=annotations.get("summary"),
            description=annotations.get("description"),
            runbook_url=links.get("runbook"),
            dashboard_url=links.get("dashboard"),
            panel_url=links.get("panel"),
            silence_url=links.get("silence"),
            generator_url=links.get("generator"),
            current_revision=current.number if current else None,
            current_image=current.image if current else None,
            stable_revision=stable.number if stable else None,
            stable_image=stable.image if stable else None,
            # No second Roll back while one is active; none once the incident is mitigated.
            can_roll_back=service is not None and not resolved and not active and not mitigated,
            can_silence=group.source == "alertmanager" and not resolved,
            rollback_line=_rollback_line(latest, approvals or []) if latest else None,
            incident_line=_incident_line(incident),
            can_export=group.incident_id is not None and (resolved or mitigated),
        )

    def last_stable(self, service: Service, revisions: list[Revision]) -> Known | None:
        """The rollback target on evidence (``rollbacks.targets.choose``); None without any."""
        if not revisions or service.strategy not in REVISION_STRATEGIES:
            return None
        return self._targets.choice(service, revisions).target


def _rollback_line(row: Rollback, approvals: list[Approval]) -> str:
    """The incident's latest rollback on its alert card: who, what, which step, result."""
    rid = format_rollback_id(row.id)
    to = f"revision {row.to_revision}" if row.to_revision else "its previous state"
    image = f" `{row.to_image}`" if row.to_image else ""
    who = "automation" if row.automatic else f"<@{row.requested_by}>"
    approved = [a.actor for a in approvals if a.decision == "approve"]
    by = f", approved by {', '.join(f'<@{a}>' for a in approved)}" if approved else ""
    state = State(row.state)
    drill = "drill " if row.drill else ""
    if state.is_active:
        step = {
            State.REQUESTED: "waiting for approval",
            State.SCHEDULED: "countdown running",
            State.APPROVED: "starting",
            State.EXECUTING: f"applying step {row.step + 1}",
            State.PAUSED: "PAUSED",
            State.VERIFYING: "changes applied, verifying",
        }[state]
        return f"⏳ {drill}{rid} in progress: {who} rolling back to {to}{image}{by} · {step}"
    if state is State.DONE:
        return f"✅ {drill}{rid} rolled back to {to}{image} (requested by {who}{by})"
    if state is State.FAILED:
        return f"❌ {drill}{rid} failed: {row.error or 'see its thread'}"
    return f"⏹ {drill}{rid} {state.value}"


def _incident_line(incident: Incident | None) -> str | None:
    if incident is None or incident.state == "open":
        return None
    at = incident.mitigated_at if incident.state == "mitigated" else incident.resolved_at
    when = f" at {at:%H:%M:%S} UTC" if at else ""
    return f"{format_incident_id(incident.id)} {incident.state}{when}"


def _moves_for(state: State, strategy: str) -> frozenset[lifecycle.Move]:
    """Only a gradual rollback has a last step worth jumping to."""
    moves = lifecycle.allowed_moves(state)
    if strategy != "gradual":
        moves = moves - {lifecycle.Move.SKIP_TO_END}
    return moves
