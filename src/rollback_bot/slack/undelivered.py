"""A message Slack never received is a fact of the incident: on the timeline and in /metrics.

The outbox retries through rate limits and outages; what it finally gives up on is
reported here, with the rollback or alert group it belonged to, so the postmortem
shows the gap in what the channel saw (and the metric can page someone).
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from rollback_bot.clock import Clock
from rollback_bot.metrics import Metrics
from rollback_bot.rollbacks.model import BOT
from rollback_bot.storage.uow import UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind

log = logging.getLogger(__name__)


def cause_of(exc: Exception) -> str:
    """Slack's error code, or the kind of connection failure: never the request's content."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    return type(exc).__name__


class UndeliveredRecorder:
    """``Outbox(on_error=...)``: count the write and put it on the timeline of its owner."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, metrics: Metrics) -> None:
        self._uow = uow
        self._clock = clock
        self._metrics = metrics

    def __call__(self, channel: str, key: str, exc: Exception) -> None:
        self._metrics.slack_errors.inc()
        owner, _, raw_id = key.partition(":")
        if owner not in ("rollback", "group") or not raw_id.isdigit():
            return
        cause = cause_of(exc)
        try:
            with self._uow() as uow:
                ids: tuple[int | None, int | None, str | None] | None
                if owner == "rollback":
                    row = uow.rollbacks.get(id=int(raw_id))
                    ids = (row.incident_id, row.id, row.service) if row else None
                else:
                    group = uow.alert_groups.get(id=int(raw_id))
                    ids = (group.incident_id, None, group.service) if group else None
                if ids is None:
                    return
                incident_id, rollback_id, service = ids
                uow.timeline.append(
                    at=self._clock.now(),
                    actor=BOT,
                    kind=TimelineKind.SLACK_UNDELIVERED,
                    summary=f"Slack never received a message in {channel} ({cause})",
                    incident_id=incident_id,
                    rollback_id=rollback_id,
                    service=service,
                    data={"channel": channel, "message": key, "cause": cause},
                )
                uow.commit()
        except Exception:  # the outbox's worker must go on; the metric was counted
            log.exception("could not record the undelivered message %s", key)
