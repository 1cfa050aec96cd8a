"""The record of every request the Slack stand-in received.

Tests assert on what the bot asked Slack to do, so each call is kept with its
decoded arguments and outcome, and callers can block until a call shows up.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

Call = dict[str, Any]


class CallLog:
    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._changed = threading.Condition()

    def record(
        self, method: str, args: dict[str, Any], *, status: int, ok: bool, connection: int = 0
    ) -> None:
        call = {"method": method, "args": args, "at": time.time(), "status": status, "ok": ok}
        if connection:
            call["connection"] = connection  # the Web API's: which TCP connection it came on
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    def all(self) -> list[Call]:
        with self._changed:
            return copy.deepcopy(self._calls)

    def count(self, method: str) -> int:
        """How many calls to ``method`` so far, without copying them (cheap to poll)."""
        with self._changed:
            return sum(1 for call in self._calls if call["method"] == method)

    def for_method(self, method: str) -> list[Call]:
        return [call for call in self.all() if call["method"] == method]

    def clear(self) -> None:
        with self._changed:
            self._calls.clear()

    def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
    ) -> Call:
        """The first call to `method` (past or future) that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for call in self._calls:
                    if call["method"] == method and (predicate is None or predicate(call)):
                        return copy.deepcopy(call)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = sorted({call["method"] for call in self._calls})
                    raise TimeoutError(f"no matching {method} call within {timeout}s; seen: {seen}")
                self._changed.wait(remaining)
