"""``GET /readyz``: can the bot do its work right now?

``/healthz`` is liveness (the process serves); readiness asks each dependency the
bot cannot work without: its database, the Kubernetes API and Slack (``auth.test``).
Each answer is kept for a few seconds, and one caller at a time asks, so that a
storm of probes costs Slack and the API server one call per check per interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# A check returns None when the dependency answers, else the reason it does not.
Check = Callable[[], str | None]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail}


class Readiness:
    def __init__(
        self,
        checks: Mapping[str, Check],
        *,
        ttl_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checks = dict(checks)
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, CheckResult]] = {}
        self._locks = {name: threading.Lock() for name in self._checks}

    def results(self) -> list[CheckResult]:
        return [self._result(name) for name in self._checks]

    def _result(self, name: str) -> CheckResult:
        with self._locks[name]:  # one probe at a time asks; the others read its answer
            hit = self._cache.get(name)
            now = self._monotonic()
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
            try:
                problem = self._checks[name]()
            except Exception as exc:  # a check that raises has failed, with the reason
                problem = f"{type(exc).__name__}: {exc}"
            result = CheckResult(name, problem is None, problem or "ok")
            self._cache[name] = (self._monotonic(), result)
            return result
