"""Deny a rollback, with a required reason, so the requester knows what to do instead."""

from __future__ import annotations

from typing import Any

from rollback_bot.slack.commands import format_rollback_id
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.kit import modal_payload, reason_input, section
from rollback_bot.slack.ui.values import button_value


def deny_modal(rollback_id: int) -> dict[str, Any]:
    """The deny modal, as the view ``views.open`` sends; it carries the rollback's id."""
    rid = format_rollback_id(rollback_id)
    return modal_payload(
        callback_id=action_ids.DENY_MODAL,
        title=f"Deny {rid}",
        submit="Deny",
        close="Cancel",
        private_metadata=button_value(rollback_id=rollback_id),
        blocks=[
            section(f"Deny rollback *{rid}*. Say why, so the requester knows what to do instead."),
            reason_input(optional=False, initial=None, hint="e.g. wrong revision, use 40"),
        ],
    )
