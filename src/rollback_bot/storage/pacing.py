"""Send slots per Slack channel, claimed atomically in the database by every replica.

Each claim is one ``UPDATE ... RETURNING`` that moves the channel's next free slot
to ``max(next_slot, now) + interval`` and hands the caller the slot it skipped over:
two replicas claiming at the same instant get slots ``interval`` apart, whatever
their timing, because the row lock orders them (PostgreSQL and SQLite alike). The
clock is wall time shared between machines (NTP), injected for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import case, insert, literal, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from rollback_bot.storage.models import SlackPacing


class SharedPacing:
    """``wait_for_slot(channel)`` returns how many seconds to wait before sending."""

    def __init__(
        self,
        engine: Engine,
        *,
        rate_per_second: float = 1.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._interval = 1.0 / rate_per_second
        self._wall = wall

    def claim(self, channel: str) -> float:
        """Claim the channel's next send slot; the epoch second it starts."""
        while True:
            now = self._wall()
            later = case((SlackPacing.next_slot > now, SlackPacing.next_slot), else_=literal(now))
            stmt = (
                update(SlackPacing)
                .where(SlackPacing.channel == channel)
                .values(next_slot=later + self._interval)
                .returning(SlackPacing.next_slot)
            )
            with self._engine.begin() as conn:
                claimed = conn.execute(stmt).scalar_one_or_none()
            if claimed is not None:
                return float(claimed) - self._interval
            try:
                with self._engine.begin() as conn:
                    conn.execute(
                        insert(SlackPacing).values(channel=channel, next_slot=now + self._interval)
                    )
                return now
            except IntegrityError:
                continue  # another replica made the row first: claim through it

    def wait_for_slot(self, channel: str) -> float:
        return max(0.0, self.claim(channel) - self._wall())

    def hold(self, channel: str, until: float) -> None:
        """Slack said Retry-After: no replica sends in the channel before ``until``."""
        with self._engine.begin() as conn:
            conn.execute(
                update(SlackPacing)
                .where(SlackPacing.channel == channel, SlackPacing.next_slot < until)
                .values(next_slot=until)
            )
