"""Buttons on the bot's messages. Each listener: acknowledge, call one service, answer.

Button values carry ids (``rollback_bot.slack.ui.values.button_value``); the person is told
the outcome ephemerally, and the message itself is updated by the notifier
as the state moves.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from rollback_bot.ids import format_rollback_id
from rollback_bot.rollbacks.lifecycle import Move
from rollback_bot.rollbacks.model import Reply, RequestSpec
from rollback_bot.services import Services
from rollback_bot.slack.conversations import form_not_opened
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.deny_modal import deny_modal
from rollback_bot.slack.ui.values import read_button_value

log = logging.getLogger(__name__)


def _ids(body: dict[str, Any]) -> dict[str, Any]:
    return read_button_value(body["actions"][0].get("value", ""))


def _tell(services: Services, body: dict[str, Any], reply: Reply) -> None:
    if not reply.text:
        return
    text = reply.text

    def tell() -> None:
        try:
            services.slack.chat_postEphemeral(
                channel=body["channel"]["id"], user=body["user"]["id"], text=text
            )
        except SlackApiError as exc:  # the action already happened; only the notice is lost
            log.warning("could not tell %s: %s", body["user"]["id"], exc.response.get("error"))

    if reply.rollback_id is None:
        tell()
    else:  # after the rollback's own messages, which wait while its first write goes out
        services.runner.notifier.say(reply.rollback_id, tell)


def _on_roll_back(s: Services, body: dict[str, Any]) -> Reply:
    ids = _ids(body)
    to = ids.get("to_revision")  # "Roll back to N" in the history listing
    if not isinstance(ids["service"], str) or not isinstance(to, int | str | None):
        raise ValueError("not a Roll back button")
    spec = RequestSpec(service=ids["service"], user=body["user"]["id"], to_revision=to)
    return s.conversations.open_request(
        spec, trigger_id=body["trigger_id"], channel=body["channel"]["id"]
    )


def _on_approve(s: Services, body: dict[str, Any]) -> Reply:
    return s.rollbacks.approve(int(_ids(body)["rollback_id"]), body["user"]["id"])


def _on_deny(s: Services, body: dict[str, Any]) -> Reply:
    rollback_id = int(_ids(body)["rollback_id"])
    try:
        s.slack.views_open(trigger_id=body["trigger_id"], view=deny_modal(rollback_id))
    except (SlackApiError, OSError) as exc:
        text = form_not_opened(exc, what="the deny form")
        command = f"/rollback deny {format_rollback_id(rollback_id)} <reason>"
        return Reply.refused(f"{text} Or deny with `{command}`.")
    return Reply.success("")


def _on_move(move: Move) -> Callable[[Services, dict[str, Any]], Reply]:
    def handle(s: Services, body: dict[str, Any]) -> Reply:
        return s.rollbacks.operate(int(_ids(body)["rollback_id"]), body["user"]["id"], move)

    return handle


def _on_export(s: Services, body: dict[str, Any]) -> Reply:
    message = body.get("message") or {}
    return s.conversations.export(
        int(_ids(body)["incident_id"]),
        "md",
        channel=body["channel"]["id"],
        thread_ts=message.get("thread_ts") or message.get("ts"),
        user=body["user"]["id"],
    )


def _on_silence(s: Services, body: dict[str, Any]) -> Reply:
    return s.conversations.silence(int(_ids(body)["group_id"]), user=body["user"]["id"])


def _on_undo_flag(s: Services, body: dict[str, Any]) -> Reply:
    return s.flags.undo(int(_ids(body)["rollback_id"]), user=body["user"]["id"])


def _on_resume_gitops(s: Services, body: dict[str, Any]) -> Reply:
    if s.gitops is None:
        return Reply.refused("GitOps resume is not set up in this bot.")
    return s.gitops.resume(int(_ids(body)["rollback_id"]), body["user"]["id"])


ACTIONS: dict[str, Callable[[Services, dict[str, Any]], Reply]] = {
    action_ids.ROLL_BACK: _on_roll_back,
    action_ids.APPROVE: _on_approve,
    action_ids.DENY: _on_deny,
    action_ids.PAUSE: _on_move(Move.PAUSE),
    action_ids.RESUME: _on_move(Move.RESUME),
    action_ids.SKIP_TO_END: _on_move(Move.SKIP_TO_END),
    action_ids.ABORT: _on_move(Move.ABORT),
    action_ids.CANCEL_COUNTDOWN: _on_move(Move.ABORT),
    action_ids.RUN_NOW: _on_move(Move.RUN_NOW),
    action_ids.EXPORT: _on_export,
    action_ids.SILENCE_1H: _on_silence,
    action_ids.UNDO_FLAG: _on_undo_flag,
    action_ids.RESUME_GITOPS: _on_resume_gitops,
}

#: Buttons whose work opens a form with the click's trigger_id (valid for 3 s): never kept
#: waiting behind other acknowledgements (``web.acks_first``).
OPENS_A_FORM = frozenset({action_ids.ROLL_BACK, action_ids.DENY})


def _work(services: Services) -> Callable[[dict[str, Any]], None]:
    def work(body: dict[str, Any]) -> None:
        handle = ACTIONS[body["actions"][0]["action_id"]]  # the listener matched only these
        try:
            reply = handle(services, body)
        except (ValueError, KeyError, TypeError) as exc:  # a button value that is not ours
            # Nothing was acted on: the value is read before any service is called.
            log.warning("unreadable button value: %s", exc)
            reply = Reply.refused("That button could not be read; nothing was done.")
        _tell(services, body, reply)

    return work


def _acknowledge(ack: Ack) -> None:
    ack()


def register(app: App, services: Services) -> None:
    # One listener for every button, its work picked by action_id: bolt tries its listeners
    # in turn on every request, so thirteen of them cost each click a dozen failed matches.
    ours = re.compile("^(?:" + "|".join(re.escape(a) for a in ACTIONS) + ")$")
    app.action(ours)(ack=_acknowledge, lazy=[_work(services)])
