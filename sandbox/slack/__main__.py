"""`python -m sandbox.slack --port 0`: run the Slack stand-in as its own process.

Prints `LISTENING <port>` once the Web API answers, so a parent process can
read the port, and stops cleanly on SIGINT or SIGTERM.

`python -m sandbox.slack send --user U0BOB '/rollback status'` and
`python -m sandbox.slack click R-1 approve --user U0BOB` drive a running
`rollback-bot demo --keep` as a person in Slack would (see sandbox.slack.remote).
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


def drive(argv: list[str]) -> int:
    from pathlib import Path

    from sandbox.slack.remote import DemoState, DriveError, Session, default_state_path

    parser = argparse.ArgumentParser(
        prog="python -m sandbox.slack", description="drive a running rollback-bot demo"
    )
    sub = parser.add_subparsers(dest="verb", required=True)
    send = sub.add_parser("send", help="type a slash command, e.g. '/rollback status'")
    send.add_argument("text")
    send.add_argument("--channel", help="where it is typed (default: the demo's channel)")
    click = sub.add_parser("click", help="click a button, e.g. R-1 approve, INC-1 rollback")
    click.add_argument("target", help="R-<n> (a rollback) or INC-<n> (an incident)")
    click.add_argument("button", help="approve, deny, pause, resume, abort, rollback, ...")
    for p in (send, click):
        p.add_argument("--user", default="U0ALICE", help="who does it (default U0ALICE)")
        p.add_argument("--state", type=Path, help="the demo's state file")
    args = parser.parse_args(argv)
    try:
        session = Session(DemoState.read(args.state or default_state_path()), args.user)
        if args.verb == "send":
            lines = session.send(args.text, args.channel)
        else:
            lines = session.click(args.target, args.button)
    except DriveError as exc:
        print(f"sandbox.slack: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the demo has stopped
        print(
            f"sandbox.slack: the demo does not answer ({exc.__class__.__name__})", file=sys.stderr
        )
        return 2
    for line in lines:
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("send", "click"):
        return drive(argv)
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
