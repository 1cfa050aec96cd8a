"""Which replica runs the scheduled work.

Every replica answers Slack and the alert webhooks and stores the jobs its
decisions make; exactly one, the holder of the Lease, runs them: execution steps,
health gates, countdowns, approval expiry (the runner's jobs), the query poller,
the manual-change watcher and the idempotency purge. The outbox runs everywhere,
paced per channel through the database. Without leader election the process
leads from the start (``serve`` refuses a second process on the same database).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import Gauge

from rollback_bot.config import Settings
from rollback_bot.kube.lease import ElectionSettings

log = logging.getLogger(__name__)


class Work(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class Runs(Protocol):
    def start_following(self) -> None: ...

    def lead(self, *, poll_seconds: float = 0.5) -> None: ...

    def follow(self) -> None: ...


@dataclass
class ScheduledWork:
    """The runner plus the loops only the leader runs; ``lead``/``follow`` switch them."""

    runner: Runs
    loops: list[Work] = field(default_factory=list)
    leader_gauge: Gauge | None = None
    poll_seconds: float = 0.5
    _lock: threading.Lock = field(default_factory=threading.Lock)
    leading: bool = False

    def start_following(self) -> None:
        self.runner.start_following()
        self._show(False)

    def lead(self) -> None:
        with self._lock:
            if self.leading:
                return
            self.leading = True
            self._show(True)
            self.runner.lead(poll_seconds=self.poll_seconds)
            for loop in self.loops:
                loop.start()

    def follow(self) -> None:
        with self._lock:
            if not self.leading:
                return
            self.leading = False
            # The runner first: no job may start once the lease is in doubt.
            self.runner.follow()
            self._show(False)
            for loop in reversed(self.loops):
                try:
                    loop.stop()
                except Exception:
                    log.exception("stopping %r after losing the lease failed", loop)

    def _show(self, leading: bool) -> None:
        if self.leader_gauge is not None:
            self.leader_gauge.set(1 if leading else 0)


def election_settings(settings: Settings) -> ElectionSettings:
    """The Lease and timings from LEADER_ELECTION_*; identity POD_NAME, else hostname-pid."""
    return ElectionSettings(
        namespace=settings.leader_election_namespace or settings.pod_namespace or "default",
        name=settings.leader_election_lease_name,
        identity=settings.pod_name or f"{socket.gethostname()}-{os.getpid()}",
        lease_duration=settings.leader_election_lease_duration,
        renew_deadline=settings.leader_election_renew_deadline,
        retry_period=settings.leader_election_retry_period,
    )
