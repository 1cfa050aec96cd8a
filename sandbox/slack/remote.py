"""Drive a running bot from a terminal: ``python -m sandbox.slack send|click``.

``rollback-bot demo --keep`` writes a state file (the bot's events URL, its signing
secret, the stand-in's URL and the channels); these commands read it and send the bot
exactly what Slack would (signed, with response_urls and trigger_ids minted by the
running stand-in), then print what the person would see: the ephemeral answers, the
modals that opened and the messages the bot posted.

    python -m sandbox.slack send --user U0BOB '/rollback status'
    python -m sandbox.slack click R-1 approve --user U0BOB
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from sandbox.slack.blocks import buttons
from sandbox.slack.driver import SlackDriver
from sandbox.slack.workspace import APP_ID

STATE_ENV = "ROLLBACK_BOT_DEMO_STATE"
STATE_NAME = "rollback-bot-demo.json"
# Words a person types for a button -> the action id the bot's button carries.
VERBS = {
    "approve": "rollback.approve",
    "deny": "rollback.deny",
    "pause": "rollback.pause",
    "resume": "rollback.resume",
    "skip": "rollback.skip_to_end",
    "abort": "rollback.abort",
    "cancel": "rollback.cancel_countdown",
    "run-now": "rollback.run_now",
    "undo-flag": "rollback.undo_flag",
    "rollback": "rollback.request",
    "roll-back": "rollback.request",
    "silence": "alert.silence_1h",
    "export": "incident.export",
}
_TARGET = re.compile(r"^(R|INC)-?(\d+)$", re.IGNORECASE)
REPLY_WAIT = 10.0


class DriveError(Exception):
    """What the person typed cannot be sent; the message says why and what would work."""


def default_state_path() -> Path:
    return Path(os.environ.get(STATE_ENV) or Path(tempfile.gettempdir()) / STATE_NAME)


@dataclass(frozen=True)
class DemoState:
    events_url: str
    signing_secret: str
    slack_url: str  # the stand-in's root, http://127.0.0.1:<port>/
    channels: tuple[str, ...]
    default_channel: str

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.__dict__ | {"channels": list(self.channels)}, indent=2))
        return path

    @classmethod
    def read(cls, path: Path) -> DemoState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError:
            raise DriveError(
                f"no running demo found ({path} is missing): start `rollback-bot demo --keep`"
            ) from None
        data["channels"] = tuple(data["channels"])
        return cls(**data)


class RemoteStandIn:
    """The parts of ``SlackStandIn`` that ``SlackDriver`` uses, over the admin routes."""

    app_id = APP_ID

    def __init__(self, root_url: str) -> None:
        self.root_url = root_url
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: never through a proxy
        self._users: dict[str, Any] | None = None

    def _get(self, route: str, **params: str) -> dict[str, Any]:
        answer = self.http.get(f"{self.root_url}_sandbox/{route}", params=params, timeout=10)
        body: dict[str, Any] = answer.json()
        return body

    def _post(self, route: str, data: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(f"{self.root_url}_sandbox/{route}", json=data, timeout=10)
        body: dict[str, Any] = answer.json()
        return body

    def new_response_url(
        self,
        *,
        channel: str | None = None,
        user_id: str | None = None,
        message_ts: str | None = None,
    ) -> str:
        body = {"channel": channel, "user_id": user_id, "message_ts": message_ts}
        return str(self._post("response-urls", body)["response_url"])

    def new_trigger_id(self, *, user_id: str | None = None) -> str:
        return str(self._post("trigger-ids", {"user_id": user_id})["trigger_id"])

    def messages(self, channel: str) -> list[dict[str, Any]]:
        return list(self._get("messages", channel=channel)["messages"])

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        return self._get("message", channel=channel, ts=ts).get("message")

    def buttons(self, channel: str, ts: str) -> list[dict[str, Any]]:
        found = self.message(channel, ts)
        return buttons(found.get("blocks")) if found else []

    def ephemerals(self, user: str) -> list[dict[str, Any]]:
        return list(self._get("ephemerals", user=user)["ephemerals"])

    @property
    def views(self) -> list[dict[str, Any]]:
        return list(self._get("views")["views"])

    @property
    def users(self) -> dict[str, Any]:
        if self._users is None:
            self._users = dict(self._get("users")["users"])
        return self._users

    @property
    def workspace(self) -> RemoteStandIn:  # SlackDriver reads standin.workspace.users
        return self


class Session:
    """One person's terminal toward the running demo."""

    def __init__(self, state: DemoState, user: str) -> None:
        self.state = state
        self.user = user
        self.slack = RemoteStandIn(state.slack_url)
        if user not in self.slack.users:
            known = ", ".join(sorted(self.slack.users))
            raise DriveError(f"no user {user} in the workspace: try one of {known}")
        self.driver = SlackDriver(
            events_url=state.events_url,
            signing_secret=state.signing_secret,
            standin=self.slack,  # type: ignore[arg-type]
        )

    def _snapshot(self) -> tuple[int, int, dict[str, int]]:
        return (
            len(self.slack.ephemerals(self.user)),
            len(self.slack.views),
            {c: len(self.slack.messages(c)) for c in self.state.channels},
        )

    def send(self, text: str, channel: str | None = None) -> list[str]:
        command, _, rest = text.strip().partition(" ")
        if not command.startswith("/"):
            command, rest = "/rollback", text.strip()
        before = self._snapshot()
        answer = self.driver.command(
            rest,
            user_id=self.user,
            channel_id=channel or self.state.default_channel,
            command=command,
        )
        return self._report(answer, before)

    def click(self, target: str, verb: str) -> list[str]:
        action_id = VERBS.get(verb.lower())
        if action_id is None:
            raise DriveError(f"unknown button {verb!r}: use one of {', '.join(VERBS)}")
        found = _TARGET.match(target)
        if found is None:
            raise DriveError(f"{target!r} is neither a rollback (R-1) nor an incident (INC-1)")
        key = "rollback_id" if found[1].upper() == "R" else "incident_id"
        wanted = int(found[2])
        for channel in self.state.channels:
            for message in reversed(self.slack.messages(channel)):
                for button in buttons(message.get("blocks")):
                    if button.get("action_id") != action_id:
                        continue
                    try:
                        value = json.loads(button.get("value") or "{}")
                    except ValueError:
                        continue
                    if isinstance(value, dict) and value.get(key) == wanted:
                        before = self._snapshot()
                        answer = self.driver.click(
                            action_id=action_id,
                            value=button["value"],
                            user_id=self.user,
                            channel_id=channel,
                            message_ts=message["ts"],
                        )
                        return [
                            f"clicked [{button['text']['text']}] on {target.upper()}",
                            *self._report(answer, before),
                        ]
        raise DriveError(f"no message shows a {verb} button for {target.upper()} right now")

    def _report(
        self, answer: requests.Response, before: tuple[int, int, dict[str, int]]
    ) -> list[str]:
        if answer.status_code != 200:
            return [f"the bot answered HTTP {answer.status_code}: {answer.text[:200]}"]
        lines = []
        if answer.text.strip():
            lines += _ack_lines(answer)
        seen_ephemerals, seen_views, seen_messages = before
        deadline = time.monotonic() + REPLY_WAIT
        # The bot answers after its acknowledgement: wait briefly for the first reply.
        while True:
            ephemerals = self.slack.ephemerals(self.user)[seen_ephemerals:]
            views = [v for v in self.slack.views[seen_views:] if v.get("user") in (None, self.user)]
            posted = {c: self.slack.messages(c)[n:] for c, n in seen_messages.items()}
            if ephemerals or views or any(posted.values()) or lines:
                break
            if time.monotonic() > deadline:
                return ["(the bot acknowledged and has said nothing more yet)"]
            time.sleep(0.1)
        time.sleep(0.3)  # a reply often comes with a second (an ephemeral, then a post)
        from sandbox.demo.render import message_lines, view_lines  # the demo's own way of showing

        for e in self.slack.ephemerals(self.user)[seen_ephemerals:]:
            lines += _indented("only you see:", message_lines(e))
        for v in self.slack.views[seen_views:]:
            what = "a modal opened" if v.get("op") == "open" else f"the modal ({v.get('op')})"
            lines += _indented(f"{what}:", view_lines(v.get("view") or {}))
        for channel, n in seen_messages.items():
            for m in self.slack.messages(channel)[n:]:
                lines += _indented(f"#{channel}, the bot posted:", message_lines(m))
        return lines


def _indented(head: str, body: list[str]) -> list[str]:
    return [head, *(f"  | {line}".rstrip() for line in body)]


def _ack_lines(answer: requests.Response) -> list[str]:
    try:
        body = answer.json()
    except ValueError:
        return [f"the bot answered: {answer.text.strip()[:500]}"]
    if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
        return []
    from sandbox.demo.render import message_lines

    return _indented("only you see:", message_lines(body))
