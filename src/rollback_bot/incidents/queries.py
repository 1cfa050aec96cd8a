"""Read-only questions people ask during and after an incident: status, history, the postmortem.

Nothing here writes; the CLI and the Slack listeners share these answers. The rows are
plain frozen data, so Slack's builders (``rollback_bot.slack.ui``) and the CLI lay
them out without asking anything again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rollback_bot.clock import Clock
from rollback_bot.executors.base import Plan
from rollback_bot.ids import format_incident_id, format_rollback_id
from rollback_bot.rollbacks.lifecycle import ACTIVE_STATES, State
from rollback_bot.storage.models import Rollback
from rollback_bot.storage.uow import UnitOfWorkFactory

# The CLI's read-only commands load neither the cluster client nor YAML, and ``serve`` loads
# the postmortem modules when someone first asks for a postmortem, not at start.
if TYPE_CHECKING:
    from rollback_bot.catalog import Catalog, Service
    from rollback_bot.incidents.postmortem import Context, Names, Postmortem
    from rollback_bot.incidents.postmortem_load import IncidentSummary
    from rollback_bot.kube.client import KubeApis
    from rollback_bot.rollbacks.targets import Targets


@dataclass(frozen=True)
class RevisionRow:
    number: int
    image: str | None
    age: timedelta | None
    stable: bool = False
    current: bool = False
    bad: bool = False  # rolled back from, or marked bad
    target: bool = False  # what a rollback without --to would choose
    known: str = ""  # what is known about it, in words


@dataclass(frozen=True)
class StatusRow:
    rollback_id: int
    service: str
    environment: str
    state: State
    strategy: str
    requested_by: str
    incident_id: int | None = None
    to_revision: int | None = None
    step: int | None = None
    steps: int | None = None
    canary_percent: int | None = None
    drill: bool = False
    automatic: bool = False
    age: timedelta | None = None


class NotFound(LookupError):
    pass


class Queries:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        catalog: Catalog | None = None,
        kube: KubeApis | None = None,  # only history reads the cluster
        targets: Targets | None = None,
        apis_for: Callable[[Service], KubeApis] | None = None,  # the service's cluster
    ) -> None:
        self._targets = targets
        self._apis_for = apis_for
        self._catalog = catalog
        self._uow = uow
        self._clock = clock
        self._kube = kube

    def status(
        self,
        *,
        service: str | None = None,
        rollback_id: int | None = None,
        incident_id: int | None = None,
    ) -> list[StatusRow]:
        with self._uow(read_only=True) as uow:
            if rollback_id is not None:
                row = uow.rollbacks.get(id=rollback_id)
                if row is None:
                    raise NotFound(f"There is no rollback {format_rollback_id(rollback_id)}.")
                rows = [row]
            elif incident_id is not None:
                rows = uow.rollbacks.list_for_incident(incident_id=incident_id)
            else:
                rows = uow.rollbacks.list_by_state(states=[s.value for s in ACTIVE_STATES])
                if service is not None:
                    rows = [r for r in rows if r.service == service]
        return [self._status_row(r) for r in rows]

    def _status_row(self, row: Rollback) -> StatusRow:
        plan = Plan.from_dict(row.plan) if row.plan else None
        steps = len(plan.steps) if plan and plan.steps else None
        return StatusRow(
            rollback_id=row.id,
            service=row.service,
            environment=row.environment,
            state=State(row.state),
            strategy=row.strategy,
            requested_by=row.requested_by,
            incident_id=row.incident_id,
            to_revision=int(row.to_revision)
            if row.to_revision and row.to_revision.isdigit()
            else None,
            step=min(row.step + 1, steps) if steps else None,
            steps=steps,
            canary_percent=plan.steps[min(row.step, steps - 1)] if plan and steps else None,
            drill=row.drill,
            automatic=row.automatic,
            age=self._clock.now() - row.created_at,
        )

    def history(self, service: Service) -> tuple[list[RevisionRow], list[str]]:
        """Revisions newest first, with which are known stable, and warnings."""
        if self._kube is None:
            raise NotFound("no Kubernetes API configured")
        from rollback_bot.kube.helm_releases import history_line
        from rollback_bot.kube.revisions import history_limit_warning, read_deployment
        from rollback_bot.kube.workloads import KIND_NAMES, read_workload, service_revisions

        apis = self._apis_for(service) if self._apis_for is not None else self._kube
        revisions = service_revisions(apis, service)
        if service.helm is not None:
            deployment: dict[str, Any] = {}  # a release: Helm's history, no Deployment
        elif service.target_kind in KIND_NAMES:
            deployment = read_workload(
                apis, service.target_kind, service.namespace, service.target_name
            )
        else:
            deployment = read_deployment(apis, service.namespace, service.deployment)
        now = self._clock.now()
        if self._targets is None:
            raise NotFound("no evidence store configured")
        choice = self._targets.choice(service, revisions)
        warnings = []
        if (limit := history_limit_warning(deployment)) is not None:
            warnings.append(limit)
        if choice.target is None:
            warnings.append(
                "no revision is known stable yet (none verified healthy, marked good, or "
                f"alert-free for {service.stable_window_seconds} s): choose one with `--to`"
            )
        ages = {r.number: (now - r.created_at) if r.created_at else None for r in revisions}
        # A Helm revision reads as in helm history: chart, app version, status, description.
        lines = {r.number: history_line(r) for r in revisions} if service.helm else {}
        rows = [
            RevisionRow(
                number=k.number,
                image=lines.get(k.number, k.image),
                age=ages.get(k.number),
                stable=k.stable,
                current=k.current,
                bad=k.bad,
                target=choice.target is not None and k.number == choice.target.number,
                known=k.what_is_known(choice.window_seconds),
            )
            for k in choice.revisions
        ]
        return rows, warnings

    def postmortem(
        self,
        incident_id: int,
        fmt: str,
        *,
        names: Names | None = None,
        context: Context | None = None,
    ) -> tuple[str, str]:
        """(file name, content) of one incident's postmortem (md, json or html)."""
        from rollback_bot.incidents import postmortem

        pm = self.postmortem_document(incident_id, names=names, context=context)
        # The timeline is redacted when written; the export is redacted again, whole.
        content = "".join(postmortem.export(pm, fmt))
        return f"postmortem-{format_incident_id(incident_id)}.{fmt}", content

    def postmortem_document(
        self,
        incident_id: int,
        *,
        names: Names | None = None,
        context: Context | None = None,
    ) -> Postmortem:
        from rollback_bot.incidents import postmortem_load

        if context is None and self._catalog is not None:
            context = self._context(incident_id)
        with self._uow(snapshot=True) as uow:  # one moment, the timeline streamed
            pm = postmortem_load.load(uow.session, incident_id, names=names, context=context)
        if pm is None:
            raise NotFound(f"There is no incident {format_incident_id(incident_id)}.")
        return pm

    def _context(self, incident_id: int) -> Context | None:
        from rollback_bot.incidents.postmortem import Context

        with self._uow(read_only=True) as uow:
            found = uow.incidents.get(id=incident_id)
            name = found.service if found else None
        service = self._catalog.service(name) if self._catalog and name else None
        if service is None:
            return None
        cluster = getattr(service, "cluster", None)
        return Context(environment=service.environment, cluster=cluster)

    def incident_thread(self, incident_id: int, channel: str) -> str | None:
        from rollback_bot.incidents import postmortem_load

        with self._uow(read_only=True) as uow:
            return postmortem_load.thread_of(uow.session, incident_id, channel)

    def incident_list(
        self,
        *,
        service: str | None = None,
        since: datetime | None = None,
        open_only: bool = False,
        limit: int = 50,
    ) -> list[IncidentSummary]:
        """Incidents newest first with TTA, TTM and outcome (drills never counted)."""
        from rollback_bot.incidents import postmortem_load

        with self._uow(read_only=True) as uow:
            return postmortem_load.list_incidents(
                uow.session,
                service=service,
                since=since,
                states=["open", "mitigated"] if open_only else None,
                limit=limit,
            )

    def incidents(self, limit: int = 50) -> list[tuple[int, str, str, str]]:
        with self._uow(read_only=True) as uow:
            return [
                (i.id, i.service, i.opened_at.isoformat(timespec="seconds"), i.state)
                for i in uow.incidents.list(limit=limit)
            ]
