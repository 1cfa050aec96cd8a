"""The slack-bolt ``App``: signature checks, retry de-duplication, listeners.

Bolt verifies every request's signature and timestamp (older than 5 minutes
is refused). Slack retries a request it believes timed out, with the same
``trigger_id``; claiming that id once in the database makes the retry a no-op
whichever process or thread receives it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient

from rollback_bot.logs import quiet_bolt_rejections
from rollback_bot.services import Services
from rollback_bot.slack.identity import BotIdentity
from rollback_bot.web.listeners import actions, commands, shortcuts, views

log = logging.getLogger(__name__)


# Interactions Slack may deliver twice (each carries a trigger_id).
_INTERACTIONS = ("block_actions", "view_submission", "message_action")


def _dedupe(services: Services) -> Callable[..., Any]:
    # SQLite has one writer at a time and makes the others sleep-and-retry with growing
    # pauses; under a burst of clicks that put hundreds of milliseconds on some
    # acknowledgements. Queueing this process's claims on a lock wakes each one at once.
    sqlite = services.engine.dialect.name == "sqlite"
    serial: AbstractContextManager[Any] = threading.Lock() if sqlite else nullcontext()

    def middleware(
        request: BoltRequest, body: dict[str, Any], next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        key = body.get("trigger_id")
        if key and (body.get("type") in _INTERACTIONS or "command" in body):
            with serial, services.uow() as uow:
                fresh = uow.idempotency.claim(key=f"slack:{key}")
                uow.commit()
            if not fresh:
                log.info("duplicate Slack delivery of %s ignored", key)
                return BoltResponse(status=200, body="")
        return next()

    return middleware


def create_bolt_app(services: Services) -> App:
    settings = services.settings
    quiet_bolt_rejections()
    app = App(
        # Tokenless: bolt gives each request a client with the token ``authorize`` returns.
        client=WebClient(base_url=services.slack.base_url, timeout=services.slack.timeout),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # Not bolt's own single-workspace check: it refuses every request while auth.test
        # fails, so one failed call at the first request would leave the buttons dead.
        authorize=BotIdentity(services.slack),
        # Acknowledgements run in the request thread and return at once; the work runs
        # after, as lazy listeners (no polling for the ack, nothing blocks the response).
        process_before_response=True,
        request_verification_enabled=True,
        url_verification_enabled=True,
        ignoring_self_events_enabled=False,
    )
    app.use(_dedupe(services))
    commands.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    shortcuts.register(app, services)
    return app
