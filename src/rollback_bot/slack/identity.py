"""Who the bot is in Slack, learnt from ``auth.test`` and kept: a Slack outage stops nothing else.

Bolt's single-workspace authorization calls ``auth.test`` on the first request and,
while that call fails, answers every click and command with "your installation with
this app is no longer available" and runs no listener: a restart during a Slack outage
would leave Approve dead even after the Web API recovered for everything but that call.
This authorization answers from what it last learnt, and when it has never learnt it
(Slack was down since the start), from the bot token alone: the listeners only need the
token, and they say plainly when a Slack call of their own fails.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize
from slack_bolt.context import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 2  # seconds; it may run on the acknowledgement's path, inside Slack's 3
RETRY_AFTER = 30.0  # seconds between attempts while Slack fails: never one per request


class BotIdentity(Authorize):
    """Bolt ``authorize`` for one workspace that never refuses because ``auth.test`` failed."""

    def __init__(
        self,
        client: WebClient,
        *,
        retry_after: float = RETRY_AFTER,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = client.token or ""
        self._probe = WebClient(token=client.token, base_url=client.base_url, timeout=PROBE_TIMEOUT)
        self._retry_after = retry_after
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._known: dict[str, Any] | None = None
        self._next_try = 0.0

    @property
    def known(self) -> dict[str, Any] | None:
        """The last successful ``auth.test`` answer (bot, team and user ids), if any."""
        return self._known

    def refresh(self) -> bool:
        """Ask Slack once; keep the answer. False (and a warning) when Slack did not answer."""
        try:
            answer = self._probe.auth_test()
        except (SlackApiError, OSError) as exc:
            cause = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
            log.warning(
                "Slack auth.test failed (%s): working on the bot token alone until it answers",
                cause,
            )
            with self._lock:
                self._next_try = self._monotonic() + self._retry_after
            return False
        with self._lock:
            self._known = dict(answer.data) if isinstance(answer.data, dict) else None
        return True

    def _due(self) -> bool:
        with self._lock:
            return self._known is None and self._monotonic() >= self._next_try

    def __call__(
        self,
        *,
        context: BoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult:
        if self._due():
            self.refresh()
        known = self._known or {}
        return AuthorizeResult(
            enterprise_id=known.get("enterprise_id") or enterprise_id,
            team_id=known.get("team_id") or team_id,
            bot_token=self._token,
            bot_id=known.get("bot_id"),
            bot_user_id=known.get("user_id"),
            user_id=user_id,
        )
