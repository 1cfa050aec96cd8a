"""`python -m sandbox.slack --port 0`: run the Slack stand-in as its own process.

Prints `LISTENING <port>` once the Web API answers, so a parent process can
read the port, and stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from sandbox.slack.standin import SlackStandIn


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.slack", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="Web API port (0 picks a free one)")
    parser.add_argument("--bot-token", default="xoxb-sandbox")
    parser.add_argument("--app-token", default="xapp-sandbox")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with SlackStandIn(
        bot_token=args.bot_token, app_token=args.app_token, port=args.port
    ) as standin:
        print(f"LISTENING {standin.port}", flush=True)
        print(f"SLACK_API_URL={standin.url}", file=sys.stderr, flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
