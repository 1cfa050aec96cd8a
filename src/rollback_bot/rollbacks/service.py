"""Rollback use cases: request, approve, deny, pause, resume, abort, cancel.

Each use case is one pass of the same shape: resolve who is acting, check the
policy (pure predicates), ask the lifecycle what the move means (pure), write
the new state *and* its timeline entry in one transaction, and only then carry
out the effects (post to Slack, hand work to the runner). A refusal is written
to the timeline too, and the person gets a reply that says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from rollback_bot.catalog import Catalog, Service
from rollback_bot.clock import Clock
from rollback_bot.executors.base import Plan
from rollback_bot.executors.kept_reads import first_step_reads
from rollback_bot.ids import format_incident_id
from rollback_bot.ids import format_rollback_id as rid
from rollback_bot.kube.model import Actor, ExecutionError
from rollback_bot.logs import log_context
from rollback_bot.rollbacks import lifecycle
from rollback_bot.rollbacks.drift import Seen, changed, moved
from rollback_bot.rollbacks.lifecycle import IllegalMove, Move, State
from rollback_bot.rollbacks.model import EffectSink, Reply, RequestSpec
from rollback_bot.rollbacks.policies import (
    Membership,
    MembershipUnavailable,
    Principal,
    Verdict,
    approvals_required,
    automation_allowed,
    may_approve,
    may_deny,
    may_operate,
    may_request,
)
from rollback_bot.rollbacks.wording import (
    expired_why,
    past_tense,
    revision_str,
    revision_text,
    ttl_text,
    with_dependents,
)
from rollback_bot.rollbacks.writer import RollbackWriter
from rollback_bot.storage.errors import ActiveRollbackExists, ConcurrentUpdate, DuplicateApproval
from rollback_bot.storage.models import Rollback
from rollback_bot.storage.repositories.rollbacks import read_rollback
from rollback_bot.storage.uow import UnitOfWork, UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind

log = logging.getLogger(__name__)


class RollbackService(RollbackWriter):
    def __init__(
        self,
        *,
        catalog: Catalog,
        uow: UnitOfWorkFactory,
        clock: Clock,
        directory: Membership,
        planner: Callable[[Service, RequestSpec], Plan],
        effects: EffectSink,
        running: Callable[[Service, RequestSpec], Seen | None] | None = None,
    ) -> None:
        """``running``: what a service runs now, read more cheaply than a plan (None from
        it, or no ``running`` at all: planning again is the only way to know)."""
        self._catalog = catalog
        self._uow = uow
        self._clock = clock
        self._directory = directory
        self._planner = planner
        self._running = running
        self.effects = effects

    # -- who ---------------------------------------------------------------
    def principal(self, service: Service, user: str) -> Principal:
        named = (
            *service.policy.requesters.usergroups,
            *service.policy.approvers.usergroups,
        )
        try:
            return Principal(user, self._directory.groups_of(user, named))
        except MembershipUnavailable as exc:
            return Principal(user, exc.known, unchecked=frozenset(exc.failed))

    def actor(self, service: Service, user: str) -> Actor:
        mapped = service.impersonate.get(user)
        if mapped is None:
            return Actor(slack_user=user)
        return Actor(slack_user=user, kube_user=mapped.user, kube_groups=mapped.groups)

    def service(self, name: str) -> Service | None:
        return self._catalog.service(name)

    # -- request -----------------------------------------------------------
    def check_request(self, spec: RequestSpec) -> tuple[Service, Verdict]:
        service = self._catalog.service(spec.service)
        if service is None:
            raise LookupError(f"Unknown service `{spec.service}`.")
        if spec.automatic:
            return service, automation_allowed(service)
        return service, may_request(service, self.principal(service, spec.user))

    def plan(self, spec: RequestSpec) -> Plan:
        """Read-only impact preview; raises ExecutionError with a message for people."""
        service = self._catalog.service(spec.service)
        if service is None:
            raise LookupError(f"Unknown service `{spec.service}`.")
        return with_dependents(self._planner(service, spec), service)

    def request(self, spec: RequestSpec, *, channel: str | None = None) -> Reply:
        try:
            service, verdict = self.check_request(spec)
        except LookupError as exc:
            return Reply.refused(f"{exc} Known services: {', '.join(self._catalog.names)}.")
        actor = "automation" if spec.automatic else spec.user
        if not verdict:
            self.refuse(service=service.name, actor=actor, what="request", why=verdict.reason)
            return Reply.refused(f"Refused: {verdict.reason}.")
        self._expire_stale_request(service)
        try:
            plan = self.plan(spec)
        except ExecutionError as exc:
            self.refuse(service=service.name, actor=actor, what="request", why=str(exc))
            return Reply.refused(f"Cannot roll back {service.label}: {exc}")
        if spec.seen is not None and (change := moved(spec.seen, plan)):
            why = f"{service.label} changed since the form was opened: {change}"
            self.refuse(service=service.name, actor=actor, what="request", why=why)
            return Reply.refused(f"{why}. Nothing was requested; open the form again.")
        required = 0 if spec.drill and service.environment != "production" else None
        required = approvals_required(service) if required is None else required
        decision = lifecycle.start(approvals_required=required, automatic=spec.automatic)
        plan_data = plan.to_dict()
        if spec.automatic:
            plan_data["detail"].update(
                countdown_seconds=spec.countdown_seconds, trigger=spec.trigger
            )
        now = self._clock.now()
        with self._uow() as uow:
            incident = uow.incidents.open_for_service(service=service.name)
            if incident is None and not spec.drill:
                # Every real rollback belongs to an incident: the unit the postmortem speaks of.
                incident, _ = uow.incidents.open_or_add(
                    service=service.name, title=f"Rollback of {service.label}", opened_at=now
                )
                uow.timeline.append(
                    at=now,
                    actor=actor,
                    kind=TimelineKind.INCIDENT_OPENED,
                    summary=f"{format_incident_id(incident.id)} opened by a rollback request "
                    f"for {service.label}",
                    incident_id=incident.id,
                    service=service.name,
                )
            try:
                row = uow.rollbacks.add(
                    incident_id=incident.id if incident else None,
                    service=service.name,
                    environment=service.environment,
                    strategy=plan.strategy,
                    state=decision.after.value,
                    requested_by=actor,
                    reason=spec.reason,
                    drill=spec.drill,
                    automatic=spec.automatic,
                    from_revision=revision_str(plan.from_revision),
                    to_revision=revision_str(plan.to_revision),
                    from_image=plan.from_image,
                    to_image=plan.to_image,
                    approvals_required=required,
                    channel=channel or service.channel,
                    created_at=now,
                    updated_at=now,
                    plan=plan_data,
                )
            except ActiveRollbackExists as exc:
                uow.rollback()
                why = f"{service.name} already has an active rollback {rid(exc.existing_id or 0)}"
                self.refuse(service=service.name, actor=actor, what="request", why=why)
                return Reply.refused(
                    f"Refused: {why}. One rollback per service at a time: "
                    f"see `/rollback status {rid(exc.existing_id or 0)}`.",
                )
            if incident and not spec.automatic and incident.acknowledged_at is None:
                incident.acknowledged_at, incident.acknowledged_by = now, spec.user
            drill = "DRILL: " if spec.drill else ""
            uow.timeline.append(
                at=now,
                actor=actor,
                kind=TimelineKind.ROLLBACK_REQUESTED,
                summary=f"{drill}{actor} requested {plan.strategy} rollback of {service.label} "
                f"from {revision_text(plan.from_revision)} to {revision_text(plan.to_revision)}"
                + (f": {spec.reason}" if spec.reason else ""),
                incident_id=row.incident_id,
                rollback_id=row.id,
                service=service.name,
                data={"plan": plan.to_dict(), "drill": spec.drill, "trigger": spec.trigger},
            )
            uow.commit()
        self.effects.carry_out(row, decision)
        needs = (
            f"; waiting for {required} approval(s) within {ttl_text(service)}"
            if decision.after is State.REQUESTED
            else ""
        )
        return Reply.success(
            f"{drill}Rollback {rid(row.id)} of {service.label} requested{needs}.",
            rollback_id=row.id,
        )

    # -- moves by people -----------------------------------------------------
    def approve(self, rollback_id: int, user: str) -> Reply:
        # What the drift check reads of the cluster goes with the rollback this approval
        # may start at once (``kept_reads``), whose checkpoint then need not read it again.
        with first_step_reads():
            return self._approve(rollback_id, user)

    def _approve(self, rollback_id: int, user: str) -> Reply:
        # One read for the checks before the write transaction (which reads it again, under
        # the lock): whether it exists, drifted or expired, and who the approver is there.
        row = self._read(rollback_id)
        if row is None:
            return Reply.refused(f"There is no rollback {rid(rollback_id)}.")
        withdrawn = self._withdraw_if_moved(row)
        if withdrawn is not None:
            return Reply.refused(
                f"Cannot approve {rid(rollback_id)}: {withdrawn}. It was withdrawn; "
                "request again to see the new plan.",
                rollback_id=rollback_id,
            )
        expired = self._expire_if_stale(row)
        if expired is not None:
            why = expired_why(expired)
            self.refuse(
                service=expired.name, actor=user, what="approve", why=why, rollback_id=rollback_id
            )
            return Reply.refused(
                f"Cannot approve {rid(rollback_id)}: {why}.", rollback_id=rollback_id
            )

        approved_before: list[int] = []

        def check(uow: UnitOfWork, service: Service, row: Rollback, who: Principal) -> Verdict:
            if row.state == State.REQUESTED and self._expired(service, row):
                return Verdict(False, expired_why(service))
            decided = uow.approvals.decisions(rollback_id=row.id)
            approved_before[:] = [sum(1 for _, decision in decided if decision == "approve")]
            done = [actor for actor, _ in decided]
            if user in done:
                raise _Repeat(f"You already approved {rid(row.id)}; it needs someone else now.")
            return may_approve(
                service,
                who,
                requested_by=row.requested_by,
                already_approved_by=done,
            )

        def record(uow: UnitOfWork, row: Rollback) -> int:
            try:
                uow.approvals.add(
                    rollback_id=row.id, actor=user, decision="approve", at=self._clock.now()
                )
            except DuplicateApproval:
                raise _Repeat(f"You already decided on {rid(row.id)}.") from None
            return approved_before[0] + 1  # read under the same write lock, in ``check``

        who = self._principal_of(row, user)
        return self._move(rollback_id, Move.APPROVE, user, check=check, record=record, who=who)

    def deny(self, rollback_id: int, user: str, reason: str) -> Reply:
        if not reason.strip():
            return Reply.refused("A denial needs a reason: `/rollback deny R-12 <reason>`.")

        def record(uow: UnitOfWork, row: Rollback) -> int:
            try:
                uow.approvals.add(
                    rollback_id=row.id,
                    actor=user,
                    decision="deny",
                    reason=reason,
                    at=self._clock.now(),
                )
            except DuplicateApproval:
                raise _Repeat(f"You already decided on {rid(row.id)}.") from None
            return 0

        return self._move(
            rollback_id,
            Move.DENY,
            user,
            check=lambda _u, s, _r, who: may_deny(s, who),
            record=record,
            note=reason,
        )

    def operate(self, rollback_id: int, user: str, move: Move, note: str = "") -> Reply:
        """Pause, resume, abort, cancel a countdown, or run it now."""
        return self._move(
            rollback_id,
            move,
            user,
            check=lambda _u, s, _r, who: may_operate(s, who),
            note=note,
        )

    # -- the shared shape ------------------------------------------------------
    def _move(
        self,
        rollback_id: int,
        move: Move,
        user: str,
        *,
        check: Callable[[UnitOfWork, Service, Rollback, Principal], Verdict],
        record: Callable[[UnitOfWork, Rollback], int] | None = None,
        note: str = "",
        who: Principal | None = None,
    ) -> Reply:
        now = self._clock.now()
        verb = move.value.replace("_", " ")
        # Group membership may ask Slack: do it before the write transaction, which on
        # SQLite holds the database's write lock until it ends.
        if who is None:
            who = self._principal_for(rollback_id, user)
        with log_context(rollback=rollback_id), self._uow() as uow:
            row = uow.rollbacks.get(id=rollback_id)
            if row is None:
                return Reply.refused(f"There is no rollback {rid(rollback_id)}.")
            service = self._catalog.service(row.service)
            if service is None:
                return Reply.refused(
                    f"{rid(rollback_id)} is for `{row.service}`, no longer in the catalog."
                )
            try:
                verdict = check(uow, service, row, who)
                if not verdict:
                    raise _Refusal(verdict.reason)
                approvals = record(uow, row) if record else 0
                decision = lifecycle.decide(
                    State(row.state),
                    move,
                    approvals_so_far=approvals,
                    approvals_required=row.approvals_required,
                )
            except _Repeat as repeat:
                # A double click or a retried delivery: the first one acted, this one is quiet.
                uow.rollback()
                return Reply.success(str(repeat), rollback_id=rollback_id)
            except (_Refusal, IllegalMove) as exc:
                # rollback() expires ``row``: reading it afterwards would reload it in a new
                # transaction of this unit of work, whose SQLite write lock then blocks
                # refuse()'s own unit of work until "database is locked".
                service_name, incident_id = row.service, row.incident_id
                uow.rollback()
                why = exc.why if isinstance(exc, IllegalMove) else str(exc)
                self.refuse(
                    service=service_name,
                    actor=user,
                    what=verb,
                    why=why,
                    rollback_id=rollback_id,
                    incident_id=incident_id,
                )
                return Reply.refused(
                    f"Cannot {verb} {rid(rollback_id)}: {why}.", rollback_id=rollback_id
                )
            self._apply(uow, row, decision, now)
            if row.incident_id is not None:
                uow.incidents.acknowledge(id=row.incident_id, at=now, by=user)
            waiting = decision.after is State.REQUESTED and move is Move.APPROVE
            uow.timeline.append(
                at=now,
                actor=user,
                kind=TimelineKind.ROLLBACK_APPROVAL
                if waiting
                else TimelineKind.rollback_entered(decision.after),
                summary=f"{user} {past_tense(move)} {rid(row.id)}"
                + (
                    f" ({approvals}/{row.approvals_required} approvals)"
                    if move is Move.APPROVE
                    else ""
                )
                + (f": {note}" if note else ""),
                incident_id=row.incident_id,
                rollback_id=row.id,
                service=row.service,
                data={
                    "move": move.value,
                    "from": decision.before.value,
                    "to": decision.after.value,
                },
            )
            try:
                uow.commit()
            except ConcurrentUpdate:
                return Reply.refused(f"{rid(rollback_id)} changed at the same moment; look again.")
        self.effects.carry_out(row, decision)
        return Reply.success(
            f"{rid(rollback_id)}: {past_tense(move)} by you; now {decision.after.value}.",
            rollback_id=row.id,
        )

    def _read(self, rollback_id: int) -> Rollback | None:
        return read_rollback(self._uow.reader, id=rollback_id)

    def _principal_for(self, rollback_id: int, user: str) -> Principal:
        return self._principal_of(self._read(rollback_id), user)

    def _principal_of(self, row: Rollback | None, user: str) -> Principal:
        service = self._catalog.service(row.service) if row else None
        return self.principal(service, user) if service else Principal(user)

    def _expired(self, service: Service, row: Rollback) -> bool:
        ttl = timedelta(seconds=service.policy.approval_ttl_seconds)
        return self._clock.now() - row.created_at > ttl

    def expire_if_stale(self, rollback_id: int) -> Service | None:
        """End a request whose approval window has passed; its service if it did.

        The runner calls this when the window closes; it is also checked when
        someone acts, so an expired request is never approvable and never
        holds the service's one active slot against a fresh request.
        """
        return self._expire_if_stale(self._read(rollback_id))

    def _expire_if_stale(self, row: Rollback | None) -> Service | None:
        service = self._catalog.service(row.service) if row else None
        stale = (
            row is not None
            and service is not None
            and row.state == State.REQUESTED
            and self._expired(service, row)
        )
        if not stale or row is None or service is None:
            return None
        rollback_id = row.id
        self.system_move(
            rollback_id,
            Move.ABORT,
            kind=TimelineKind.ROLLBACK_EXPIRED,
            summary=f"{rid(rollback_id)} expired: not enough approvals within {ttl_text(service)}",
            data={"approval_ttl_seconds": service.policy.approval_ttl_seconds},
        )
        return service

    def withdraw_if_moved(self, rollback_id: int) -> str | None:
        """End a request whose service no longer runs what the requester saw; why, if so."""
        return self._withdraw_if_moved(self._read(rollback_id))

    def _withdraw_if_moved(self, row: Rollback | None) -> str | None:
        if row is None or row.state != State.REQUESTED or row.strategy == "flag":
            return None
        rollback_id = row.id
        seen = Seen(row.from_revision, row.from_image)
        spec = RequestSpec(
            service=row.service,
            user=row.requested_by,
            to_revision=int(to) if (to := row.to_revision or "").isdigit() else None,
            strategy=row.strategy,
            force_bad=True,  # the verdict was weighed at request time; only drift counts here
        )
        try:
            change = self._moved_since(seen, spec)
        except (ExecutionError, LookupError) as exc:
            # Not knowing is no evidence of a move: the executor's own preconditions guard
            # the write; the approval goes on.
            log.warning("could not re-read %s before approval: %s", row.service, exc)
            return None
        if change is None:
            return None
        why = f"{row.service} changed since {rid(rollback_id)} was requested: {change}"
        self.system_move(
            rollback_id,
            Move.ABORT,
            kind=TimelineKind.ROLLBACK_EXPIRED,
            summary=why,
            data={"seen": seen.to_dict()},
        )
        return why

    def _moved_since(self, seen: Seen, spec: RequestSpec) -> str | None:
        service = self._catalog.service(spec.service)
        current = self._running(service, spec) if service and self._running else None
        return moved(seen, self.plan(spec)) if current is None else changed(seen, current)

    def _expire_stale_request(self, service: Service) -> None:
        with self._uow(read_only=True) as uow:
            active = uow.rollbacks.active_for_service(service=service.name)
            active_id = active.id if active else None
        if active_id is not None:
            self.expire_if_stale(active_id)


class _Refusal(Exception):
    pass


class _Repeat(Exception):
    """The same person doing the same thing again: answered, not recorded."""
