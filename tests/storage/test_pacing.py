"""Slack pacing shared through the database: two outboxes on one database keep one pace."""

from __future__ import annotations

import itertools
import threading
import time

from sqlalchemy import Engine

from rollback_bot.slack.outbox import Outbox
from rollback_bot.storage.pacing import SharedPacing
from tests.unit.test_outbox import FakeSlack


def test_claims_from_many_threads_get_distinct_slots_one_interval_apart(engine: Engine) -> None:
    now = 1_000_000.0
    pacers = [SharedPacing(engine, rate_per_second=1.0, wall=lambda: now) for _ in range(2)]
    slots: list[float] = []
    lock = threading.Lock()

    def claim(pacer: SharedPacing) -> None:
        for _ in range(10):
            slot = pacer.claim("C1")
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=claim, args=(p,)) for p in pacers for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(slots) == [now + i for i in range(40)]
    # Another channel has its own pace.
    assert pacers[0].claim("C2") == now


def test_retry_after_holds_every_replica(engine: Engine) -> None:
    now = 2_000_000.0
    a = SharedPacing(engine, wall=lambda: now)
    b = SharedPacing(engine, wall=lambda: now)
    assert a.claim("C1") == now
    a.hold("C1", now + 30)
    assert b.wait_for_slot("C1") == 30
    assert b.claim("C1") == now + 31


class SpyPacing(SharedPacing):
    """The real pacing, noting the slot each send claimed."""

    def __init__(self, engine: Engine, rate: float, claimed: list[float]) -> None:
        super().__init__(engine, rate_per_second=rate)
        self.claimed = claimed

    def claim(self, channel: str) -> float:
        slot = super().claim(channel)
        self.claimed.append(slot)
        return slot


def test_two_outboxes_on_one_database_together_keep_the_channel_rate(engine: Engine) -> None:
    rate = 10.0
    slack = FakeSlack()
    claimed: list[float] = []
    boxes = [
        Outbox(slack, rate_per_second=rate, burst=4, pacer=SpyPacing(engine, rate, claimed))  # type: ignore[arg-type]
        for _ in range(2)
    ]
    for i in range(8):
        for n, box in enumerate(boxes):
            box.upsert(key=f"r{n}:{i}", channel="C1", render=lambda: ("hi", []))
    try:
        assert all(box.flush(timeout=30) for box in boxes)
    finally:
        for box in boxes:
            box.close()
    sends = slack.ok_calls("C1")
    assert len(sends) == 16
    # Each process alone would burst 4 at once; together they claimed 16 slots in a row,
    # one interval apart, and no send left before its slot.
    slots = sorted(claimed)
    assert len(slots) == 16
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(gap >= 1 / rate - 1e-6 for gap in gaps), gaps
    assert time.time() >= slots[-1]
