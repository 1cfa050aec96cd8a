"""SlackDriver: plays Slack's side of the conversation toward the bot's HTTP endpoint.

Slash commands, button clicks and modal submissions are sent exactly as Slack
sends them (form-encoded, signed, Slack's headers), with response_urls and
trigger_ids minted by the stand-in so the bot's follow-up calls land there.
The payload builders are public so Socket Mode tests send identical payloads.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import requests

from sandbox.slack.payloads import (
    block_actions_payload,
    command_payload,
    event_callback_payload,
    message_action_payload,
    view_submission_payload,
)
from sandbox.slack.signing import sign_request
from sandbox.slack.standin import SlackStandIn

FORM = "application/x-www-form-urlencoded"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
DEFAULT_BLOCK_ID = "actions"


class SlackDriver:
    def __init__(
        self,
        *,
        events_url: str,
        signing_secret: str,
        standin: SlackStandIn,
        team_id: str = "T0SANDBOX",
        timeout: float = 10.0,
    ) -> None:
        self.events_url = events_url
        self.signing_secret = signing_secret
        self.standin = standin
        self.team_id = team_id
        self.timeout = timeout

    # -- payloads -------------------------------------------------------------------------

    def command_payload(
        self, text: str, *, user_id: str, channel_id: str, command: str = "/rollback"
    ) -> dict[str, str]:
        return command_payload(
            text=text,
            user_id=user_id,
            channel_id=channel_id,
            command=command,
            response_url=self.standin.new_response_url(channel=channel_id, user_id=user_id),
            trigger_id=self.standin.new_trigger_id(user_id=user_id),
            team_id=self.team_id,
            api_app_id=self.standin.app_id,
            user_name=self._user_name(user_id),
        )

    def click_payload(
        self,
        *,
        action_id: str,
        value: str,
        user_id: str,
        channel_id: str,
        message_ts: str,
        block_id: str | None = None,
    ) -> dict[str, Any]:
        """A block_actions payload; the button's block_id and text come from the stored message."""
        message = self.standin.message(channel_id, message_ts)
        button = next(
            (
                b
                for b in self.standin.buttons(channel_id, message_ts)
                if b.get("action_id") == action_id
            ),
            None,
        )
        resolved_block = block_id or (button or {}).get("block_id") or DEFAULT_BLOCK_ID
        return block_actions_payload(
            action_id=action_id,
            value=value,
            block_id=resolved_block,
            user_id=user_id,
            channel_id=channel_id,
            message_ts=message_ts,
            message=message,
            button=button,
            response_url=self.standin.new_response_url(
                channel=channel_id, user_id=user_id, message_ts=message_ts
            ),
            trigger_id=self.standin.new_trigger_id(user_id=user_id),
            team_id=self.team_id,
            api_app_id=self.standin.app_id,
            user_name=self._user_name(user_id),
        )

    def view_submission_payload(
        self,
        *,
        callback_id: str,
        user_id: str,
        private_metadata: str = "",
        values: dict[str, Any],
        view_id: str | None = None,
    ) -> dict[str, Any]:
        return view_submission_payload(
            callback_id=callback_id,
            user_id=user_id,
            private_metadata=private_metadata,
            values=values,
            view=self.standin.view(view_id) if view_id else None,
            view_id=view_id,
            trigger_id=self.standin.new_trigger_id(user_id=user_id),
            team_id=self.team_id,
            api_app_id=self.standin.app_id,
            user_name=self._user_name(user_id),
        )

    def message_shortcut_payload(
        self, *, callback_id: str, user_id: str, channel_id: str, message_ts: str
    ) -> dict[str, Any]:
        """A message shortcut on a message stored in the stand-in."""
        message = self.standin.message(channel_id, message_ts)
        if message is None:
            raise LookupError(f"no message {message_ts} in {channel_id}")
        return message_action_payload(
            callback_id=callback_id,
            user_id=user_id,
            channel_id=channel_id,
            message=message,
            response_url=self.standin.new_response_url(
                channel=channel_id, user_id=user_id, message_ts=message_ts
            ),
            trigger_id=self.standin.new_trigger_id(user_id=user_id),
            team_id=self.team_id,
            api_app_id=self.standin.app_id,
            user_name=self._user_name(user_id),
        )

    def event_payload(self, event: dict[str, Any]) -> dict[str, Any]:
        return event_callback_payload(
            event,
            team_id=self.team_id,
            api_app_id=self.standin.app_id,
            bot_user_id=self.standin.bot_user_id,
        )

    def _user_name(self, user_id: str) -> str | None:
        info = self.standin.workspace.users.get(user_id)
        return info.get("name") if info else None

    # -- requests to the bot --------------------------------------------------------------

    def command(
        self,
        text: str,
        *,
        user_id: str,
        channel_id: str,
        command: str = "/rollback",
        retry_num: int | None = None,
    ) -> requests.Response:
        payload = self.command_payload(
            text, user_id=user_id, channel_id=channel_id, command=command
        )
        return self._send(urlencode(payload).encode(), FORM, retry_num)

    def click(
        self,
        *,
        action_id: str,
        value: str,
        user_id: str,
        channel_id: str,
        message_ts: str,
        block_id: str | None = None,
        retry_num: int | None = None,
    ) -> requests.Response:
        payload = self.click_payload(
            action_id=action_id,
            value=value,
            user_id=user_id,
            channel_id=channel_id,
            message_ts=message_ts,
            block_id=block_id,
        )
        return self._send(_interactivity_body(payload), FORM, retry_num)

    def submit_view(
        self,
        *,
        callback_id: str,
        user_id: str,
        private_metadata: str = "",
        values: dict[str, Any],
        view_id: str | None = None,
    ) -> requests.Response:
        payload = self.view_submission_payload(
            callback_id=callback_id,
            user_id=user_id,
            private_metadata=private_metadata,
            values=values,
            view_id=view_id,
        )
        return self._send(_interactivity_body(payload), FORM, None)

    def message_shortcut(
        self,
        *,
        callback_id: str,
        user_id: str,
        channel_id: str,
        message_ts: str,
        retry_num: int | None = None,
    ) -> requests.Response:
        payload = self.message_shortcut_payload(
            callback_id=callback_id, user_id=user_id, channel_id=channel_id, message_ts=message_ts
        )
        return self._send(_interactivity_body(payload), FORM, retry_num)

    def event(self, event: dict[str, Any], *, retry_num: int | None = None) -> requests.Response:
        """An Events API delivery (JSON body, as Slack sends events)."""
        body = json.dumps(self.event_payload(event)).encode()
        return self._send(body, "application/json", retry_num)

    def raw(self, body: bytes, headers: dict[str, str]) -> requests.Response:
        """Send exactly these bytes and headers: for forged, stale or malformed requests."""
        return requests.post(self.events_url, data=body, headers=headers, timeout=self.timeout)

    def signed_click(self, **click: Any) -> tuple[bytes, dict[str, str]]:
        """The body and headers ``click`` sends (same arguments), signed now, not sent.

        For a caller that times the delivery alone (``bench.click_to_patch``): building,
        signing and ``requests``' own set-up are the sender's work, not the receiver's.
        """
        body = _interactivity_body(self.click_payload(**click))
        return body, self._headers(body, FORM, None)

    def _send(self, body: bytes, content_type: str, retry_num: int | None) -> requests.Response:
        headers = self._headers(body, content_type, retry_num)
        return requests.post(self.events_url, data=body, headers=headers, timeout=self.timeout)

    def _headers(self, body: bytes, content_type: str, retry_num: int | None) -> dict[str, str]:
        headers = {"Content-Type": content_type, "User-Agent": USER_AGENT}
        headers.update(sign_request(self.signing_secret, body))
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return headers


def _interactivity_body(payload: dict[str, Any]) -> bytes:
    """Slack posts interactions as a form with one `payload` field holding JSON."""
    return urlencode({"payload": json.dumps(payload)}).encode()
