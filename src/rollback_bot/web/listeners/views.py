"""Modal submissions: the rollback confirmation and the denial with its reason."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from rollback_bot.services import Services
from rollback_bot.slack.conversations import spec_from_metadata
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.values import read_button_value, submitted_reason


def register(app: App, services: Services) -> None:
    def request(body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        reason = submitted_reason(view["state"]["values"]) or ""
        spec, channel = spec_from_metadata(view["private_metadata"], user, reason)
        reply = services.rollbacks.request(spec, channel=None)
        service = services.catalog.service(spec.service)
        where = channel or (service.channel if service else None)
        if where:
            services.slack.chat_postEphemeral(channel=where, user=user, text=reply.text)

    def check_reason(ack: Ack, view: dict[str, Any]) -> None:
        """Slack shows these errors in the modal only if they come with the acknowledgement."""
        if not submitted_reason(view["state"]["values"]):
            ack(response_action="errors", errors={action_ids.REASON_BLOCK: "Say why you deny it."})
            return
        ack()

    def deny(body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = submitted_reason(view["state"]["values"])
        if not reason:
            return  # refused in the acknowledgement
        rollback_id = int(read_button_value(view["private_metadata"])["rollback_id"])
        reply = services.rollbacks.deny(rollback_id, body["user"]["id"], reason)
        with services.uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=rollback_id)
        if row is not None and row.channel:
            services.slack.chat_postEphemeral(
                channel=row.channel, user=body["user"]["id"], text=reply.text
            )

    app.view(action_ids.REQUEST_MODAL)(ack=_acknowledge, lazy=[request])
    app.view(action_ids.DENY_MODAL)(ack=check_reason, lazy=[deny])


def _acknowledge(ack: Ack) -> None:
    ack()
