"""Modal submissions: the rollback confirmation and the denial with its reason."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from rollback_bot.services import Services
from rollback_bot.slack.conversations import metadata_needs_override, spec_from_metadata
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.values import (
    read_button_value,
    submitted_force_bad,
    submitted_reason,
)


def register(app: App, services: Services) -> None:
    def request(body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        values = view["state"]["values"]
        reason = submitted_reason(values) or ""
        spec, channel = spec_from_metadata(
            view["private_metadata"], user, reason, force_bad=submitted_force_bad(values)
        )
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

    def check_override(ack: Ack, view: dict[str, Any]) -> None:
        """A known-bad target is refused in the modal itself unless the override is ticked."""
        values = view["state"]["values"]
        if metadata_needs_override(view["private_metadata"]) and not submitted_force_bad(values):
            ack(
                response_action="errors",
                errors={
                    action_ids.FORCE_BAD_BLOCK: "This revision is known bad: tick the override "
                    "to roll back to it anyway, or cancel."
                },
            )
            return
        ack()

    app.view(action_ids.REQUEST_MODAL)(ack=check_override, lazy=[request])
    app.view(action_ids.DENY_MODAL)(ack=check_reason, lazy=[deny])
