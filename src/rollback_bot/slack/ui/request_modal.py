"""The confirmation before a rollback: current vs target, the diff, who must approve, why.

It opens from the alert card's Roll back, a history row or ``/rollback``; the
modal is the confirmation, so submitting it is what requests the rollback.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block

from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.kit import (
    context,
    fields,
    force_bad_input,
    modal_payload,
    reason_input,
    section,
)
from rollback_bot.slack.ui.mrkdwn import changes_section_text, escape, revision, warnings_text
from rollback_bot.slack.ui.views import RequestPreview


def _intro(preview: RequestPreview) -> str:
    where = escape(f"{preview.service} ({preview.environment})")
    strategy = escape(preview.strategy)
    if preview.drill:
        return (
            f"🧪 *Drill* of a rollback of *{where}* with the *{strategy}* "
            "strategy. Every step runs as a server-side dry run: nothing is changed."
        )
    return f"Roll back *{where}* with the *{strategy}* strategy."


def _approval(preview: RequestPreview) -> str:
    if preview.approvals_required <= 0:
        return "No approval needed: it starts when you submit."
    who = f": {preview.must_approve}" if preview.must_approve else ""
    plural = "s" if preview.approvals_required > 1 else ""
    return f"Needs {preview.approvals_required} approval{plural} by someone other than you{who}."


def request_modal(preview: RequestPreview) -> dict[str, Any]:
    """The confirmation modal, as the view ``views.update`` sends.

    ``preview.private_metadata`` is carried whole; over Slack's limit it is
    refused (``ValueError``) rather than cut.
    """
    stable = " ✅ known stable" if preview.target_stable else ""
    blocks: list[Block] = [
        section(_intro(preview)),
        fields(
            [
                ("Running now", revision(preview.current_revision, preview.current_image)),
                ("Rolls back to", revision(preview.target_revision, preview.target_image) + stable),
            ]
        ),
        section(
            changes_section_text(preview.changes)
            if preview.changes
            else "*What changes*\nNo image or configuration differences found."
        ),
    ]
    if preview.target_known:
        blocks.append(
            context(f"About revision {preview.target_revision}: " + escape(preview.target_known))
        )
    if preview.warnings:
        blocks.append(section(warnings_text(preview.warnings)))
    if preview.known_bad:
        blocks.append(force_bad_input(preview.target_revision))
    blocks.append(context(_approval(preview)))
    blocks.append(
        reason_input(
            optional=preview.drill,
            initial=preview.reason,
            hint="What is wrong with the running revision?",
        )
    )
    return modal_payload(
        callback_id=action_ids.REQUEST_MODAL,
        title="Rollback drill" if preview.drill else "Confirm rollback",
        submit="Run drill" if preview.drill else "Roll back",
        close="Cancel",
        private_metadata=preview.private_metadata,
        blocks=blocks,
    )
