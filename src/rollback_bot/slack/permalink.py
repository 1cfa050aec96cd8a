"""A message's permalink from Slack (``chat.getPermalink``), for notes that quote it."""

from __future__ import annotations

from collections.abc import Callable

from slack_sdk import WebClient


def slack_permalink(client: WebClient) -> Callable[[str, str], str | None]:
    """``(channel, message ts) -> URL``; raises ``SlackApiError`` when Slack says no."""

    def permalink(channel: str, ts: str) -> str | None:
        found = client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
        return found if isinstance(found, str) else None

    return permalink
