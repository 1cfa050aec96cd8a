"""``rollback-bot demo``: the whole loop on loopback stand-ins, told step by step.

Before anyone creates a Slack app or points the bot at a cluster they should be able
to see what it does. The demo starts the Kubernetes API emulator, the Slack stand-in
and the bot on 127.0.0.1 (``sandbox.stack.LoopbackStack``: the same composition root,
bolt app, waitress server, signed requests and official Kubernetes client as
``rollback-bot serve``), plays one incident through them (a good release, a crashing
one, an alert, a request, a refused self-approval, an approval, the rollback, the
postmortem) and narrates what Slack showed and what changed in Kubernetes.

The bot's own log goes to a file in the demo directory, so the terminal shows the
story and not the plumbing.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from sandbox.demo.narration import Narrator
from sandbox.demo.process import bypass_proxies, log_to, quietly, terminal, wait_for_stop
from sandbox.demo.scenario import (
    CHANNEL,
    DEMO_STABLE_WINDOW,
    READY_DELAY,
    Demo,
    DemoFailed,
    sample_catalog,
)

if TYPE_CHECKING:
    from sandbox.stack import LoopbackStack

__all__ = ["run_demo"]


def run_demo(
    *,
    keep: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    directory: Path | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run the narrated demo; 0 on success, 1 on failure, 130 when interrupted.

    The story goes to ``out`` (stdout), a failure to ``err`` (stderr). ``keep`` leaves
    everything running until ``stop`` is set (by default: until Ctrl-C or SIGTERM).
    """
    # Taken now: while the demo runs, sys.stderr points at bot.log.
    narrator = Narrator(out or terminal(), err or sys.stderr)
    try:
        workdir = directory or Path(tempfile.mkdtemp(prefix="rollback-bot-demo-"))
        workdir.mkdir(parents=True, exist_ok=True)
        log = workdir / "bot.log"
        log.touch()
        # A directory used before holds the last run's incident, whose alert would be
        # taken as already known: every run starts from an empty database.
        (workdir / "demo.db").unlink(missing_ok=True)
    except OSError as exc:
        narrator.fail(f"cannot use {directory or 'a temporary directory'}: {exc}")
        return 1
    bypass_proxies()
    narrator.intro(workdir)
    with log_to(log):
        return _play(narrator, workdir, keep=keep, stop=stop)


def _play(narrator: Narrator, workdir: Path, *, keep: bool, stop: threading.Event | None) -> int:
    # Imported only now: the migration tooling logs as it loads, and that belongs in
    # bot.log, not in the story.
    from sandbox.stack import LoopbackStack

    started = time.monotonic()
    stack: LoopbackStack | None = None
    try:
        stack = LoopbackStack(
            catalog=sample_catalog(stable_window=DEMO_STABLE_WINDOW),
            database_url=f"sqlite:///{workdir / 'demo.db'}",
            ready_delay=READY_DELAY,
        )
        Demo(stack, narrator, workdir).play()
        narrator.finish(time.monotonic() - started)
        if not keep:
            narrator.not_kept(workdir)
            return 0
        state = _write_driver_state(stack)
        narrator.keep(stack, workdir, state)
        try:
            wait_for_stop(stop)
        finally:
            state.unlink(missing_ok=True)
        narrator.stopping()
        return 0
    except KeyboardInterrupt:
        narrator.fail("interrupted")
        return 130
    except Exception as exc:
        narrator.fail(_describe(exc))
        return 1
    finally:
        if stack is not None:
            quietly(stack.stop)


def _write_driver_state(stack: LoopbackStack) -> Path:
    """Where ``python -m sandbox.slack send|click`` finds the running bot."""
    from sandbox.slack.remote import DemoState, default_state_path
    from sandbox.stack import SIGNING_SECRET

    channels = [s.channel for s in stack.catalog.services]
    if stack.catalog.fallback_channel:
        channels.append(stack.catalog.fallback_channel)
    return DemoState(
        events_url=f"{stack.url}/slack/events",
        signing_secret=SIGNING_SECRET,
        slack_url=stack.slack.root_url,
        channels=tuple(dict.fromkeys(channels)),
        default_channel=CHANNEL,
    ).write(default_state_path())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DemoFailed):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
