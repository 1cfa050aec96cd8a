"""The buttons of a rollback message: which action id becomes which button.

Confirmation policy: a button that changes something immediately carries a
Block Kit ``confirm`` dialog (Abort, Roll back now, Go to 0% now, Undo flag
change). A button that only opens a modal does not (Deny here, Roll back on the
alert card): the modal itself is the confirmation, with the diff or the
required reason, and stacking a dialog in front of it would add a click
without adding information.
"""

from __future__ import annotations

from slack_sdk.models.blocks import ButtonElement

from rollback_bot.slack.commands import format_rollback_id
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.kit import button, confirm
from rollback_bot.slack.ui.mrkdwn import escape
from rollback_bot.slack.ui.rollback_wording import target
from rollback_bot.slack.ui.values import button_value
from rollback_bot.slack.ui.views import RollbackView


def rollback_button(view: RollbackView, action: str) -> ButtonElement | None:
    """The button for ``action`` (an id from ``view.actions``); None when it does not apply.

    An action id that is not a rollback's is a programming error (``ValueError``).
    """
    rid = format_rollback_id(view.rollback_id)
    value = button_value(rollback_id=view.rollback_id)
    if action == action_ids.APPROVE:
        return button("Approve", action, value, style="primary")
    if action == action_ids.DENY:
        return button("Deny", action, value)
    if action == action_ids.PAUSE:
        return button("⏸️ Pause", action, value)
    if action == action_ids.RESUME:
        return button("▶️ Resume", action, value, style="primary")
    if action == action_ids.SKIP_TO_END:
        return button(
            "⏭️ Go to 0% now",
            action,
            value,
            confirm=confirm(
                f"Move all traffic off the canary of {view.service}?",
                f"Skips the remaining steps of {rid} and applies the last one at once, "
                "without health gates in between.",
                "Go to 0% now",
            ),
        )
    if action == action_ids.ABORT:
        return button(
            "Abort",
            action,
            value,
            style="danger",
            confirm=confirm(
                f"Abort {rid}?",
                f"Stops the rollback of *{escape(view.service)}* where it is. "
                "Steps already applied stay applied.",
                "Abort",
            ),
        )
    if action == action_ids.CANCEL_COUNTDOWN:
        return button("Cancel", action, value)
    if action == action_ids.RUN_NOW:
        return button(
            "Roll back now",
            action,
            value,
            style="danger",
            confirm=confirm(
                f"Roll back {view.service} now?",
                f"Rolls *{escape(view.service)}* back to {escape(target(view))} without waiting "
                "for the countdown.",
                "Roll back now",
            ),
        )
    if action == action_ids.UNDO_FLAG:
        return button(
            "Undo flag change",
            action,
            button_value(rollback_id=view.rollback_id, flag=view.flag),
            confirm=confirm(
                f"Turn {view.flag or 'the flag'} back on?",
                f"Restores the flag's previous value on *{escape(view.service)}*.",
                "Turn it back on",
            ),
        )
    if action == action_ids.RESUME_GITOPS:
        what = view.gitops_paused or "GitOps reconciliation"
        return button(
            "Resume GitOps once the fix is merged",
            action,
            value,
            confirm=confirm(
                f"Resume {what}?",
                f"Restores the settings {escape(what)} had before {rid} paused it: it syncs "
                "from Git again, so the fix must be merged first.",
                "Resume GitOps",
            ),
        )
    if action == action_ids.EXPORT:
        if view.incident_id is None:
            return None
        return button("Export postmortem", action, button_value(incident_id=view.incident_id))
    raise ValueError(f"not a rollback action: {action!r}")


def rollback_buttons(view: RollbackView) -> list[ButtonElement]:
    """The buttons ``view.actions`` asks for, in its order."""
    return [b for a in view.actions if (b := rollback_button(view, a)) is not None]
