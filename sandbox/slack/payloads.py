"""Slack's inbound payload shapes: slash commands, block_actions, view_submission,
message shortcuts (message_action), events.

The same payloads reach the bot over HTTP (form-encoded, signed) and over
Socket Mode (inside an envelope), so they are built once here and used by
both SlackDriver and Socket Mode tests.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

VERIFICATION_TOKEN = "sandbox-verification-token"  # Slack's deprecated per-app token
TEAM_DOMAIN = "sandbox"


def command_payload(
    *,
    text: str,
    user_id: str,
    channel_id: str,
    command: str,
    response_url: str,
    trigger_id: str,
    team_id: str,
    api_app_id: str,
    user_name: str | None = None,
    channel_name: str | None = None,
) -> dict[str, str]:
    """Every field Slack sends with a slash command (all strings, as in the form body)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name or channel_id.lower(),
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def _user(user_id: str, team_id: str, user_name: str | None) -> dict[str, str]:
    name = user_name or user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def block_actions_payload(
    *,
    action_id: str,
    value: str,
    block_id: str,
    user_id: str,
    channel_id: str,
    message_ts: str,
    message: dict[str, Any] | None,
    button: dict[str, Any] | None,
    response_url: str,
    trigger_id: str,
    team_id: str,
    api_app_id: str,
    user_name: str | None = None,
) -> dict[str, Any]:
    """A button click on a message, as Slack's interactivity request carries it."""
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    if button is not None:
        for key in ("text", "style"):
            if key in button:
                action[key] = copy.deepcopy(button[key])
    shown = copy.deepcopy(message) if message is not None else {"type": "message", "text": ""}
    for key in ("channel", "updated", "broadcast"):
        shown.pop(key, None)
    shown.setdefault("ts", message_ts)
    return {
        "type": "block_actions",
        "user": _user(user_id, team_id, user_name),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": shown,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def state_values(values: dict[str, Any]) -> dict[str, Any]:
    """`view.state.values` from `{block_id: {action_id: str | element_state}}`.

    A plain string becomes a plain_text_input's state; a dict is taken as the
    element state Slack would send (for selects, date pickers and so on).
    """
    shaped: dict[str, Any] = {}
    for block_id, actions in values.items():
        shaped[block_id] = {
            action_id: (
                copy.deepcopy(state)
                if isinstance(state, dict)
                else {"type": "plain_text_input", "value": state}
            )
            for action_id, state in actions.items()
        }
    return shaped


def view_submission_payload(
    *,
    callback_id: str,
    user_id: str,
    private_metadata: str,
    values: dict[str, Any],
    view: dict[str, Any] | None,
    view_id: str | None,
    trigger_id: str,
    team_id: str,
    api_app_id: str,
    user_name: str | None = None,
) -> dict[str, Any]:
    """A modal's submit button, with `view.state.values` shaped like Slack's."""
    submitted = copy.deepcopy(view) if view is not None else {}
    submitted_id = view_id or submitted.get("id") or f"V0{uuid.uuid4().hex[:8].upper()}"
    submitted.update(
        {
            "id": submitted_id,
            "team_id": team_id,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": state_values(values)},
            "app_id": api_app_id,
            "app_installed_team_id": team_id,
        }
    )
    submitted.setdefault("blocks", [])
    submitted.setdefault("hash", f"{int(time.time())}.{uuid.uuid4().hex[:8]}")
    submitted.setdefault("root_view_id", submitted_id)
    submitted.setdefault("previous_view_id", None)
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": _user(user_id, team_id, user_name),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def message_action_payload(
    *,
    callback_id: str,
    user_id: str,
    channel_id: str,
    message: dict[str, Any],
    response_url: str,
    trigger_id: str,
    team_id: str,
    api_app_id: str,
    user_name: str | None = None,
) -> dict[str, Any]:
    """A message shortcut ("..." on a message -> the app's action), as Slack sends it."""
    shown = copy.deepcopy(message)
    for key in ("channel", "updated", "broadcast"):
        shown.pop(key, None)
    user = _user(user_id, team_id, user_name)
    return {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": f"{time.time():.6f}",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": {"id": user["id"], "name": user["name"]},
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "is_enterprise_install": False,
        "enterprise": None,
        "api_app_id": api_app_id,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
        "response_url": response_url,
        "message_ts": shown.get("ts"),
        "message": shown,
    }


def event_callback_payload(
    event: dict[str, Any], *, team_id: str, api_app_id: str, bot_user_id: str
) -> dict[str, Any]:
    """An Events API delivery wrapping `event`."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": copy.deepcopy(event),
        "type": "event_callback",
        "event_id": f"Ev0{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
