"""Message shortcuts: "Add to incident timeline". Acknowledge, call one service, answer.

The message's text, author and permalink become a note on the incident the message
belongs to (``incidents.notes``); the person is told ephemerally what was added, or
why nothing was.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from rollback_bot.incidents.notes import NoteResult, SlackMessage
from rollback_bot.services import Services
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.notes import note_reply

log = logging.getLogger(__name__)


def _message(body: dict[str, Any]) -> SlackMessage:
    message = body.get("message") or {}
    return SlackMessage(
        channel=str((body.get("channel") or {}).get("id", "")),
        ts=str(message.get("ts") or body.get("message_ts") or ""),
        text=str(message.get("text") or ""),
        author=message.get("user") or message.get("bot_id"),
        thread_ts=message.get("thread_ts"),
    )


def _add_to_timeline(services: Services, body: dict[str, Any]) -> None:
    user, message = body["user"]["id"], _message(body)
    if services.notes is None or not message.channel or not message.ts:
        result = NoteResult("empty", why="that message cannot be read")
    else:
        result = services.notes.add_message(message, user=user)
    try:
        services.slack.chat_postEphemeral(
            channel=message.channel, user=user, text=note_reply(result)
        )
    except SlackApiError as exc:  # the note is stored; only the confirmation is lost
        log.warning("could not tell %s: %s", user, exc.response.get("error"))


def register(app: App, services: Services) -> None:
    def acknowledge(ack: Ack) -> None:
        ack()

    def work(body: dict[str, Any]) -> None:
        _add_to_timeline(services, body)

    app.shortcut(action_ids.ADD_TO_TIMELINE)(ack=acknowledge, lazy=[work])
