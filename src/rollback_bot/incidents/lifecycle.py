"""An incident's lifecycle: open -> mitigated -> resolved, each step on the timeline.

*Mitigated* means the harm stopped, on evidence: the service's alerts resolved, the
health gate's alert check (Alertmanager or the Prometheus condition) came back clear after
a rollback, or a person declared it (``/rollback mitigated INC-7``). A rollback whose
rollout is healthy is not by itself a mitigation: with no alert source to ask, the
incident stays open until one of the above happens. *Resolved* means every alert of the
incident resolved. The postmortem's time to mitigate is ``mitigated_at - opened_at``.

``decide`` is pure; ``transition`` writes the new state and its timeline entry in the
caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from rollback_bot.catalog import Catalog, Service
from rollback_bot.clock import Clock
from rollback_bot.ids import format_incident_id
from rollback_bot.redaction import redact_text
from rollback_bot.rollbacks.policies import Principal, may_declare_mitigated
from rollback_bot.storage.models import Incident
from rollback_bot.storage.uow import UnitOfWork, UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind


class IncidentState(StrEnum):
    OPEN = "open"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"


class IncidentMove(StrEnum):
    MITIGATE = "mitigate"
    RESOLVE = "resolve"


S, M = IncidentState, IncidentMove

TRANSITIONS: dict[tuple[IncidentState, IncidentMove], IncidentState] = {
    (S.OPEN, M.MITIGATE): S.MITIGATED,
    (S.OPEN, M.RESOLVE): S.RESOLVED,
    (S.MITIGATED, M.RESOLVE): S.RESOLVED,
}

_WHY_NOT = {
    S.OPEN: "it is open",
    S.MITIGATED: "it is already mitigated",
    S.RESOLVED: "it is already resolved",
}


class IllegalIncidentMove(Exception):
    def __init__(self, move: IncidentMove, state: IncidentState) -> None:
        self.why = _WHY_NOT[state]
        super().__init__(f"cannot {move.value} an incident: {self.why}")


def decide(state: IncidentState, move: IncidentMove) -> IncidentState:
    after = TRANSITIONS.get((state, move))
    if after is None:
        raise IllegalIncidentMove(move, state)
    return after


def transition(
    uow: UnitOfWork,
    incident: Incident,
    move: IncidentMove,
    *,
    at: datetime,
    actor: str,
    why: str,
    data: dict[str, Any] | None = None,
) -> bool:
    """Move ``incident``; False (and nothing written) when the move is not legal now.

    Resolving an incident that was never marked mitigated also sets ``mitigated_at``:
    every alert resolved is the strongest evidence that the harm stopped.
    """
    try:
        before = IncidentState(incident.state)
        after = decide(before, move)
    except IllegalIncidentMove:
        return False
    incident.state = after.value
    if after is S.MITIGATED or (after is S.RESOLVED and incident.mitigated_at is None):
        incident.mitigated_at = at
    if after is S.RESOLVED:
        incident.resolved_at = at
    kind = (
        TimelineKind.INCIDENT_MITIGATED if after is S.MITIGATED else TimelineKind.INCIDENT_RESOLVED
    )
    uow.timeline.append(
        at=at,
        actor=actor,
        kind=kind,
        summary=f"{format_incident_id(incident.id)} {after.value}: {why}",
        incident_id=incident.id,
        service=incident.service,
        data={"from": before.value, "to": after.value, **(data or {})},
    )
    return True


def mitigate(
    uow: UnitOfWork,
    incident_id: int,
    *,
    at: datetime,
    actor: str,
    why: str,
    data: dict[str, Any] | None = None,
) -> bool:
    """For the runner (injected, as it sits below this package)."""
    incident = uow.incidents.get(id=incident_id)
    if incident is None:
        return False
    return transition(uow, incident, M.MITIGATE, at=at, actor=actor, why=why, data=data)


class Incidents:
    """What people do to an incident: ``/rollback mitigated INC-7 [reason]``."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        uow: UnitOfWorkFactory,
        clock: Clock,
        principal: Callable[[Service, str], Principal],
    ) -> None:
        self._catalog = catalog
        self._uow = uow
        self._clock = clock
        self._principal = principal

    def declare_mitigated(self, incident_id: int, *, user: str, reason: str) -> tuple[bool, str]:
        name = format_incident_id(incident_id)
        reason = redact_text(reason)  # it is echoed back to Slack as well as stored
        with self._uow(read_only=True) as uow:
            found = uow.incidents.get(id=incident_id)
            service_name = found.service if found else None
        if service_name is None:
            return False, f"There is no incident {name}."
        service = self._catalog.service(service_name)
        if service is None:
            return False, f"{name} is for `{service_name}`, no longer in the catalog."
        allowed = may_declare_mitigated(service, self._principal(service, user))
        if not allowed:
            return False, f"Refused: {allowed.reason}."
        with self._uow() as uow:
            incident = uow.incidents.get(id=incident_id)
            assert incident is not None
            state = incident.state
            moved = transition(
                uow,
                incident,
                M.MITIGATE,
                at=self._clock.now(),
                actor=user,
                why=f"declared by {user}" + (f": {reason}" if reason else ""),
                data={"declared_by": user, "reason": reason},
            )
            if not moved:
                return False, f"{name} is {state}: {_WHY_NOT[IncidentState(state)]}."
            uow.commit()
        return True, f"{name} declared mitigated" + (f": {reason}" if reason else "") + "."
