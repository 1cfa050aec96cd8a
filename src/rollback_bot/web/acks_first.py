"""Acknowledgements first: the work behind a click waits while Slack requests keep coming.

Slack wants every request acknowledged within 3 seconds (or it retries it and shows the
person an error); the work behind a click, done after its acknowledgement, has no such
deadline. In one process both compete for the interpreter lock, so in a burst of clicks
the work behind the first ones slowed the acknowledgements of the later ones. The HTTP
app counts the Slack requests it serves (``AcksInFlight.counting``); work that may wait
(``slack_app.ClaimingLazyRunner``: a button's, unless it opens a form) starts at once
when no other Slack request is in flight and none began after its own (a lone click, as
before), else when none is and none began for ``QUIET_GAP``, and at the latest
``ACKS_FIRST_FOR`` seconds after its acknowledgement, whether or not requests still
come: a flood delays an answer (an approval with it) by that much, never
for ever, and in a flood longer than that the work runs beside the acknowledgements as
before. Work that must not wait (any other lazy work: a form to open, a command) is handed
to the same work threads, which take their work in turn, so the work queued before it
stops waiting (``hurry``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

#: The longest the work behind an acknowledgement waits for the other acknowledgements.
ACKS_FIRST_FOR = 2.0

#: How long no Slack request may have begun for the work to start: a request is handled
#: in one hold of the interpreter lock, so "none in flight" alone is nearly always true
#: when the work looks, in the middle of a burst too.
QUIET_GAP = 0.005

#: Where ``create_web_app`` keeps the count (Flask's place for what an extension shares).
EXTENSION = "rollback_bot.acks_in_flight"

_WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Acked:
    """Where an acknowledgement stands: what began up to it, and how long its work waits."""

    begun: int  # Slack requests begun up to it, itself included
    until: float  # ``monotonic`` time its work stops waiting
    own: int | None = None  # its own request's number, when it is one being counted


class AcksInFlight:
    """The Slack requests the HTTP server is serving, and a bounded wait for a pause in them."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._quiet = threading.Condition(threading.Lock())
        self._in_flight: set[int] = set()  # the numbers of the requests being served
        self._begun = 0
        self._last_begun = float("-inf")
        self._hurried = 0  # work acknowledged up to this many begun requests waits no more
        self._waiting = 0
        self._serving = threading.local()  # the request a thread serves, for ``acked``
        self._monotonic = monotonic

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def waiting(self) -> int:
        """Pieces of work waiting for the acknowledgements now (tests observe it)."""
        return self._waiting

    def begin(self) -> int:
        """A Slack request is being served by this thread: its number, for ``end``."""
        with self._quiet:
            self._begun += 1
            number = self._begun
            self._in_flight.add(number)
            self._last_begun = self._monotonic()
        self._serving.number = number
        return number

    def end(self, number: int) -> None:
        self._serving.number = None
        with self._quiet:
            self._in_flight.discard(number)

    def hurry(self) -> None:
        """Work that must not wait was handed over: the work queued before it waits no more
        (it would hold up the work threads, which take their work in turn)."""
        with self._quiet:
            self._hurried = self._begun
            if self._waiting:
                self._quiet.notify_all()

    def acked(self) -> Acked:
        """Called by an acknowledgement handing work over: what that work will wait for."""
        own = getattr(self._serving, "number", None)
        with self._quiet:
            return Acked(begun=self._begun, until=self._monotonic() + ACKS_FIRST_FOR, own=own)

    def wait_quiet(self, acked: Acked) -> None:
        """Returns at once when no other Slack request is in flight and none began after
        ``acked`` (a lone click: its work starts as its acknowledgement ends, as before);
        otherwise when none is in flight but its own and none began for ``QUIET_GAP``
        seconds; when work that must not wait was handed over after it (``hurry``); and
        at ``acked.until`` in any case."""
        with self._quiet:
            self._waiting += 1
            try:
                while (now := self._monotonic()) < acked.until:
                    if acked.begun <= self._hurried:
                        return
                    others = len(self._in_flight) - (acked.own in self._in_flight)
                    if not others and self._begun == acked.begun:
                        return
                    left = self._last_begun + QUIET_GAP - now
                    if not others and left <= 0:
                        return
                    self._quiet.wait(min(left if left > 0 else QUIET_GAP, acked.until - now))
            finally:
                self._waiting -= 1

    def counting(self, app: _WSGIApp, path: str) -> _WSGIApp:
        """``app`` with its requests to ``path`` counted while it handles them."""

        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != path:
                return app(environ, start_response)
            number = self.begin()
            try:
                return app(environ, start_response)
            finally:
                self.end(number)

        return counted
