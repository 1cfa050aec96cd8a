"""The bot's voice in Slack: rollback messages, thread progress, alert groups.

Implements the runner's ``Notifier`` and the relay's group listener over the
outbox. Messages are rendered when the outbox sends them, from the database,
so a burst of state changes shows up as one up-to-date edit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import update

from rollback_bot.clock import Clock, SystemClock
from rollback_bot.ids import format_rollback_id
from rollback_bot.rollbacks.lifecycle import Decision
from rollback_bot.slack.outbox import Outbox, Rendered
from rollback_bot.slack.presenter import Presenter
from rollback_bot.slack.ui.alert_card import alert_message, suggestion_message
from rollback_bot.slack.ui.limits import MAX_TEXT
from rollback_bot.slack.ui.mrkdwn import escape
from rollback_bot.slack.ui.rollback_message import rollback_message
from rollback_bot.slack.ui.thread import speaks, summary_line, transition_line
from rollback_bot.storage.models import AlertGroup, Rollback
from rollback_bot.storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)


def rollback_key(rollback_id: int) -> str:
    return f"rollback:{rollback_id}"


def group_key(group_id: int) -> str:
    return f"group:{group_id}"


class SlackNotifier:
    def __init__(
        self,
        *,
        outbox: Outbox,
        presenter: Presenter,
        uow: UnitOfWorkFactory,
        clock: Clock | None = None,
    ) -> None:
        self._outbox = outbox
        self._presenter = presenter
        self._uow = uow
        self._clock = clock or SystemClock()

    # -- rollbacks -----------------------------------------------------------------
    def rollback_changed(self, row: Rollback, decision: Decision | None = None) -> None:
        if not row.channel:
            return
        if row.message_ts:
            self._outbox.remember(rollback_key(row.id), row.channel, row.message_ts)
        self._outbox.upsert(
            key=rollback_key(row.id),
            channel=row.channel,
            render=self._render_rollback(row.id),
            on_posted=self._saver(row.id, "rollback"),
            urgent=True,  # approvals, countdowns and failures: a person must decide
        )
        self._refresh_cards(row)
        if decision is not None and speaks(decision.before, decision.after):
            view = self._presenter.rollback(row.id)
            line = transition_line(view, decision.before, decision.after) if view else None
            if line is not None:
                self._thread_line(row, line)

    def _refresh_cards(self, row: Rollback) -> None:
        """The incident's alert cards are its live view: edit them too (coalesced by key)."""
        if row.incident_id is None:
            return
        self._presenter.revisions.forget(row.service)  # "running now" must be read again
        with self._uow(read_only=True) as uow:
            groups = uow.alert_groups.list_for_incident(incident_id=row.incident_id)
        for group in groups:
            if group.message_ts:  # only cards already posted; a new one renders fresh
                self.group_changed(group)

    def incident_changed(self, incident_id: int) -> None:
        """Mitigated or resolved: the incident's cards change their buttons."""
        with self._uow(read_only=True) as uow:
            groups = uow.alert_groups.list_for_incident(incident_id=incident_id)
        for group in groups:
            if group.message_ts:
                self.group_changed(group)

    def progress(self, row: Rollback, line: str) -> None:
        """A line from the runner or the watcher: outside text, shown literally."""
        self._thread_line(row, escape(line, MAX_TEXT))

    def _thread_line(self, row: Rollback, line: str) -> None:
        if row.channel:
            self._outbox.reply(
                parent_key=rollback_key(row.id),
                channel=row.channel,
                render=lambda: (line, []),
                urgent=True,
            )

    def finished(self, row: Rollback) -> None:
        view = self._presenter.rollback(row.id)
        if view is not None and row.channel:
            line = summary_line(view)
            self._outbox.reply(
                parent_key=rollback_key(row.id),
                channel=row.channel,
                render=lambda: (line, []),
                broadcast=True,
                urgent=True,
            )

    # -- alert groups ----------------------------------------------------------------
    def group_changed(self, group: AlertGroup) -> None:
        if not group.channel:
            return  # matched no service and no fallback channel: recorded only
        if group.message_ts:
            self._outbox.remember(group_key(group.id), group.channel, group.message_ts)
        self._outbox.upsert(
            key=group_key(group.id),
            channel=group.channel,
            render=self._render_group(group.id),
            on_posted=self._saver(group.id, "group"),
        )

    def group_reply(self, group: AlertGroup, render: Callable[[], Rendered]) -> None:
        if group.channel:
            self._outbox.reply(parent_key=group_key(group.id), channel=group.channel, render=render)

    def group_progress(self, group: AlertGroup, line: str) -> None:
        """A line of outside text (e.g. a manual change) in the alert group's thread."""
        shown = escape(line, MAX_TEXT)
        self.group_reply(group, lambda: (shown, []))

    def suggest_rollback(self, group: AlertGroup, *, service: str, text: str) -> None:
        """A rollback suggestion with its Roll back button, in the group's thread."""
        self.group_reply(
            group,
            lambda: suggestion_message(
                service=service, group_id=group.id, text=text, incident_id=group.incident_id
            ),
        )

    # -- helpers ---------------------------------------------------------------------
    def _render_rollback(self, rollback_id: int) -> Callable[[], Rendered]:
        def render() -> Rendered:
            view = self._presenter.rollback(rollback_id)
            if view is None:
                return f"Rollback {format_rollback_id(rollback_id)} no longer exists", []
            # Rendered when sent, so a countdown says how long is really left.
            return rollback_message(view, now=self._clock.now())

        return render

    def _render_group(self, group_id: int) -> Callable[[], Rendered]:
        def render() -> Rendered:
            view = self._presenter.alert_group(group_id)
            if view is None:
                return f"Alert group {group_id} no longer exists", []
            return alert_message(view)

        return render

    def _saver(self, row_id: int, what: str) -> Callable[[str], None]:
        model = Rollback if what == "rollback" else AlertGroup

        def save(ts: str) -> None:
            # A plain UPDATE: where a message lives is not a state change, so it
            # must not bump the rollback's version and fail a concurrent move.
            with self._uow() as uow:
                uow.session.execute(update(model).where(model.id == row_id).values(message_ts=ts))
                uow.commit()

        return save
