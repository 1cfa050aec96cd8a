"""Small modals and notices that are not about one rollback: loading and errors.

Modals must open within Slack's trigger_id lifetime (3 s), before the bot has
read the cluster, so a loading modal opens first and is then replaced.
"""

from __future__ import annotations

from typing import Any

from rollback_bot.slack.ui.kit import modal_payload, section


def loading_modal(title: str) -> dict[str, Any]:
    return modal_payload(
        title=title, close="Close", blocks=[section(":hourglass: Reading the cluster…")]
    )


def message_modal(title: str, text: str) -> dict[str, Any]:
    return modal_payload(title=title, close="Close", blocks=[section(text)])
