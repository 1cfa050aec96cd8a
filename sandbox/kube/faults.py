"""Fault injection and the audit trail: what tests arrange and what they inspect.

Both live outside the Kubernetes object model on purpose: they are reachable through
`/_sandbox/...` and in-process helpers, never through `/api`, so no client can mistake
them for cluster state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError, conflict, injected
from .resources import BY_PLURAL


@dataclass
class _Pending:
    conflicts: int = 0
    errors: int = 0
    status: int = 500


@dataclass
class Faults:
    latency: float = 0.0
    reply_latency: float = 0.0  # after a write is stored, before it is answered
    crashing: set[str] = field(default_factory=set)
    _pending: dict[tuple[str, str, str], _Pending] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(
        self,
        *,
        resource: str,
        namespace: str,
        name: str,
        conflicts: int = 0,
        errors: int = 0,
        status: int = 500,
    ) -> None:
        with self._lock:
            self._pending[(resource, namespace, name)] = _Pending(conflicts, errors, status)

    def take(self, resource: str, namespace: str, name: str) -> ApiError | None:
        """The failure the next write to this object must answer, if one is armed."""
        with self._lock:
            pending = self._pending.get((resource, namespace, name))
            if pending is None:
                return None
            if pending.conflicts > 0:
                pending.conflicts -= 1
                return conflict(BY_PLURAL[resource].qualified, name)
            if pending.errors > 0:
                pending.errors -= 1
                return injected(pending.status)
            del self._pending[(resource, namespace, name)]
            return None


@dataclass
class Audit:
    entries: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, **entry: Any) -> None:
        entry["at"] = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        with self._lock:
            self.entries.append(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self.entries]
