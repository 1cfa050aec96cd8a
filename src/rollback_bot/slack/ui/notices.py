"""Small modals and notices that are not about one rollback: loading and errors.

Modals must open within Slack's trigger_id lifetime (3 s), before the bot has
read the cluster, so a loading modal opens first and is then replaced.
"""

from __future__ import annotations

from typing import Any


def loading_modal(title: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title[:24]},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": ":hourglass: Reading the cluster…"},
            }
        ],
    }


def message_modal(title: str, text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title[:24]},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}],
    }
