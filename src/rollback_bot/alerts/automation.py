"""Automatic rollbacks, carefully: what trigger rules lead to.

A critical rule starts a rollback in the SCHEDULED state: a countdown message
that any authorized person can cancel, and that cancels itself when the alert
resolves first. A warning rule only suggests, with a Roll back button; it acts
on nothing. Whether automation may act at all is the service's policy. Where a
suggestion is shown is a port (``Suggestions``), which Slack's notifier fills.
"""

from __future__ import annotations

import logging
from typing import Protocol

from rollback_bot.alerts.model import Alert
from rollback_bot.alerts.triggers import TriggerDecision
from rollback_bot.catalog import Service
from rollback_bot.ids import format_rollback_id
from rollback_bot.rollbacks.lifecycle import Move, State
from rollback_bot.rollbacks.model import RequestSpec
from rollback_bot.rollbacks.service import RollbackService
from rollback_bot.storage.models import AlertGroup
from rollback_bot.storage.uow import UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind

log = logging.getLogger(__name__)


class Suggestions(Protocol):
    """Where a suggested rollback is shown to people: under the alert group it is about."""

    def suggest_rollback(self, group: AlertGroup, *, service: str, text: str) -> None: ...


class Automation:
    def __init__(
        self, *, rollbacks: RollbackService, suggestions: Suggestions, uow: UnitOfWorkFactory
    ) -> None:
        self._rollbacks = rollbacks
        self._suggestions = suggestions
        self._uow = uow
        self._groups: dict[tuple[str, str], AlertGroup] = {}

    def group_changed(self, group: AlertGroup) -> None:
        if group.service:
            self._groups[(group.service, group.alertname)] = group

    def group_resolved(self, group: AlertGroup) -> None:
        if not group.service:
            return
        with self._uow(read_only=True) as uow:
            active = uow.rollbacks.active_for_service(service=group.service)
        if active is None or not active.automatic or active.state != State.SCHEDULED:
            return
        self._rollbacks.system_move(
            active.id,
            Move.ABORT,
            summary=f"{group.alertname} resolved before the countdown ended: "
            f"automatic rollback {format_rollback_id(active.id)} cancelled",
            kind=TimelineKind.COUNTDOWN_CANCELLED,
        )

    def triggered(self, service: Service, alert: Alert, decision: TriggerDecision) -> None:
        rule = decision.rule
        if decision.action == "countdown":
            reply = self._rollbacks.request(
                RequestSpec(
                    service=service.name,
                    user="automation",
                    automatic=True,
                    trigger=rule.name,
                    reason=f"rule {rule.name}: {rule.condition} ({decision.reason})",
                    countdown_seconds=rule.countdown_seconds,
                )
            )
            if not reply.ok:
                log.info("automatic rollback of %s not started: %s", service.name, reply.text)
                self._suggest(service, alert, f"Automatic rollback not started: {reply.text}")
            return
        self._suggest(service, alert, f"Rule *{rule.name}* ({rule.condition}) suggests a rollback.")

    def _suggest(self, service: Service, alert: Alert, text: str) -> None:
        group = self._groups.get((service.name, alert.name))
        if group is None:
            log.info("no alert group of %s to suggest a rollback under: %s", service.name, text)
            return
        self._suggestions.suggest_rollback(group, service=service.name, text=text)
