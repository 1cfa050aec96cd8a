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

_UNREADABLE = {
    action_ids.REASON_BLOCK: "This form could not be read; nothing was done. Start again."
}


def _request_metadata_ok(view: dict[str, Any]) -> bool:
    try:
        spec, _ = spec_from_metadata(view.get("private_metadata", ""), "check", "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return isinstance(spec.service, str) and bool(spec.service)


def _deny_metadata_ok(view: dict[str, Any]) -> bool:
    try:
        value = read_button_value(view.get("private_metadata", ""))["rollback_id"]
        return isinstance(value, int | str) and int(value) > 0
    except (ValueError, KeyError, TypeError):
        return False


def register(app: App, services: Services) -> None:
    def check_request(ack: Ack, view: dict[str, Any]) -> None:
        """Broken metadata, or a known-bad target without the override, is answered in the
        modal itself, before anything is acted on."""
        if not _request_metadata_ok(view):
            ack(response_action="errors", errors=_UNREADABLE)
            return
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

    def request(body: dict[str, Any], view: dict[str, Any]) -> None:
        if not _request_metadata_ok(view):
            return  # answered in the acknowledgement
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
        if not _deny_metadata_ok(view):
            ack(response_action="errors", errors=_UNREADABLE)
            return
        if not submitted_reason(view["state"]["values"]):
            ack(response_action="errors", errors={action_ids.REASON_BLOCK: "Say why you deny it."})
            return
        ack()

    def deny(body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = submitted_reason(view["state"]["values"])
        if not reason or not _deny_metadata_ok(view):
            return  # refused in the acknowledgement
        rollback_id = int(read_button_value(view["private_metadata"])["rollback_id"])
        reply = services.rollbacks.deny(rollback_id, body["user"]["id"], reason)
        with services.uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=rollback_id)
        if row is not None and row.channel:
            services.slack.chat_postEphemeral(
                channel=row.channel, user=body["user"]["id"], text=reply.text
            )

    app.view(action_ids.REQUEST_MODAL)(ack=check_request, lazy=[request])
    app.view(action_ids.DENY_MODAL)(ack=check_reason, lazy=[deny])
