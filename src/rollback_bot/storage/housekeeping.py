"""Periodic clean-up of rows that only matter for a while: idempotency keys.

Slack retries a delivery for minutes, so a claimed key is worth keeping for a day and
then only grows the table. The purge runs once at start (a bot that was down a week
catches up at once) and then every hour, on its own daemon thread: one DELETE that needs
neither the scheduler's persistent job store nor a job surviving a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from rollback_bot.storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)

KEEP_IDEMPOTENCY_KEYS = timedelta(days=1)
PURGE_EVERY_SECONDS = 3600.0


def _wall_clock() -> datetime:
    # The same clock IdempotencyRepository.claim stamps keys with.
    return datetime.now(UTC)


class IdempotencyPurge:
    """Deletes idempotency keys older than ``keep``, at start and every ``every_seconds``."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        keep: timedelta = KEEP_IDEMPOTENCY_KEYS,
        every_seconds: float = PURGE_EVERY_SECONDS,
        now: Callable[[], datetime] = _wall_clock,
    ) -> None:
        self._uow = uow
        self._keep = keep
        self._every = every_seconds
        self._now = now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def purge_once(self) -> int:
        """Delete the expired keys now; how many went."""
        with self._uow() as uow:
            purged = uow.idempotency.purge_before(before=self._now() - self._keep)
            uow.commit()
        if purged:
            log.info("purged %d idempotency key(s) older than %s", purged, self._keep)
        return purged

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="idempotency-purge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while True:
            try:
                self.purge_once()
            except Exception:  # a failed purge is retried next hour; the bot carries on
                log.exception("purging idempotency keys failed")
            if self._stop.wait(self._every):
                return
