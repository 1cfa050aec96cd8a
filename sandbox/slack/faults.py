"""Scripted failures for the Slack stand-in: rate limits, server errors, API errors.

The bot's retry and degradation paths only run when Slack misbehaves, so tests
queue the misbehaviour here and the stand-in consumes it call by call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

ANY_METHOD = "*"


@dataclass(frozen=True)
class Fault:
    """What one faulted call answers."""

    status: int
    retry_after: int
    error: str | None

    def response(self) -> tuple[int, dict[str, str], dict[str, object]]:
        """HTTP status, extra headers and JSON body, shaped like Slack's."""
        if self.error is not None:
            # Slack reports method-level failures with HTTP 200 and ok=false.
            return 200, {}, {"ok": False, "error": self.error}
        if self.status == 429:
            return (
                429,
                {"Retry-After": str(self.retry_after)},
                {"ok": False, "error": "ratelimited"},
            )
        error = "service_unavailable" if self.status == 503 else "internal_error"
        return self.status, {}, {"ok": False, "error": error}


@dataclass
class _Pending:
    fault: Fault
    remaining: int


class FaultPlan:
    """Per-method queues of faults, consumed in the order they were injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, list[_Pending]] = {}

    def inject(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        count: int = 1,
        error: str | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        if error is None and not (status == 429 or 500 <= status <= 599):
            raise ValueError("status must be 429 or 5xx unless error is given")
        fault = Fault(status=status, retry_after=retry_after, error=error)
        with self._lock:
            self._pending.setdefault(method, []).append(_Pending(fault, count))

    def take(self, method: str) -> Fault | None:
        """The fault the next call to `method` must answer, if any (method-specific first)."""
        with self._lock:
            for key in (method, ANY_METHOD):
                queue = self._pending.get(key)
                if queue:
                    head = queue[0]
                    head.remaining -= 1
                    if head.remaining == 0:
                        queue.pop(0)
                    return head.fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
