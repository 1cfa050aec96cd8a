"""The floor the bot's acknowledgements are measured against: bare slack-bolt + Flask + waitress.

    python -m bench.bolt_baseline [--port 0]

A slack-bolt ``App`` with signature verification on (the bench's signing secret),
mounted in Flask with bolt's own adapter and served by waitress with the settings
``rollback-bot serve`` uses (``rollback_bot.app.ServerThread``: 16 threads, the same
connection limit, idle timeout and sweep interval). It answers ``/rollback`` and
every click with a plain ``ack()`` and does nothing else: no database, no Slack
call. Authorization answers from a fixed result (bolt's own would call
``auth.test``), and listeners run before the response as in the bot, so bolt does
not poll for the ack. Prints ``rollback-bot listening on URL`` (the line the bench
waits for) and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask, request
from slack_bolt import Ack, App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult

from rollback_bot.app import ServerThread
from sandbox.stack import BOT_TOKEN, SIGNING_SECRET


def create_app() -> Flask:
    def authorize(**_: Any) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None, team_id="T0BENCH", bot_user_id="U0BOT", bot_token=BOT_TOKEN
        )

    bolt = App(
        signing_secret=SIGNING_SECRET,
        authorize=authorize,
        process_before_response=True,
        request_verification_enabled=True,
        ignoring_self_events_enabled=False,
    )

    def plain_ack(ack: Ack) -> None:
        ack()

    bolt.command("/rollback")(plain_ack)
    bolt.action({"action_id": re.compile(".*")})(plain_ack)
    handler = SlackRequestHandler(bolt)
    web = Flask("bolt-baseline")

    @web.post("/slack/events")
    def slack_events() -> Any:
        return handler.handle(request)

    return web


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = ServerThread(create_app(), host=args.host, port=args.port).start()
    print(f"rollback-bot listening on {server.url}", flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
