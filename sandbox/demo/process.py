"""What the demo does to its own process while it runs.

The terminal's encoding, the proxy environment, where log records and stray stderr go,
and waiting for Ctrl-C or SIGTERM with ``--keep``: each is undone or harmless afterwards,
so ``run_demo`` can be called from tests in the same process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO


def terminal() -> TextIO:
    # Slack texts carry emoji; a terminal or pipe that cannot show them gets "?" instead
    # of a crash in the middle of the story.
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    return sys.stdout


def bypass_proxies() -> None:
    """Loopback traffic must not go to an HTTP proxy configured for the outside world."""
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(name, "").split(",") if h]
        missing = [h for h in ("127.0.0.1", "localhost") if h not in hosts]
        if missing:
            os.environ[name] = ",".join(hosts + missing)


@contextlib.contextmanager
def log_to(path: Path) -> Iterator[None]:
    """Send log records and stray stderr output to ``path`` while the demo runs.

    Stderr too: the loopback servers report dropped client connections there, which
    is plumbing, not part of the story.
    """
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    with path.open("a", encoding="utf-8", errors="replace") as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.handlers = [handler]
        root.setLevel(logging.INFO)
        try:
            with contextlib.redirect_stderr(stream):
                yield
        finally:
            root.handlers = saved_handlers
            root.setLevel(saved_level)


def wait_for_stop(stop: threading.Event | None) -> None:
    """Block until ``stop`` is set, or, without one, until Ctrl-C or SIGTERM."""
    if stop is not None:
        stop.wait()
        return
    interrupted = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = [signal.signal(sig, lambda *_: interrupted.set()) for sig in signals]
    try:
        # Short waits so that the handlers get to run on the main thread.
        while not interrupted.wait(0.2):
            pass
    finally:
        for sig, handler in zip(signals, previous, strict=True):
            signal.signal(sig, handler)


def quietly(action: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        action()
