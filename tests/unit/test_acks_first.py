"""The work behind a click waits for a pause in the Slack requests, bounded
(``rollback_bot.web.acks_first``).

Threads wait on the real clock; each test observes where a wait stands (``waiting``) and
joins it with a generous timeout that only guards against a hang: no timing is asserted.
An acknowledgement is ``begin`` / ``acked`` / ``end`` on one thread, as in the HTTP app.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rollback_bot.web import acks_first
from rollback_bot.web.acks_first import Acked, AcksInFlight
from sandbox.stack import wait_until


def _waiter(acks: AcksInFlight, acked: Acked) -> threading.Thread:
    thread = threading.Thread(target=acks.wait_quiet, args=(acked,), daemon=True)
    thread.start()
    return thread


@pytest.fixture
def long_bound(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(acks_first, "ACKS_FIRST_FOR", 60.0)
    yield


def test_a_lone_click_s_work_starts_at_once_even_before_its_ack_ends(long_bound: None) -> None:
    acks = AcksInFlight()
    own = acks.begin()
    acked = acks.acked()
    assert acked.own == own
    acks.wait_quiet(acked)  # returns: nothing else in flight, nothing came after it
    acks.end(own)
    acks.wait_quiet(acked)
    assert acks.waiting == 0


def test_the_work_waits_while_another_request_is_served(long_bound: None) -> None:
    acks = AcksInFlight()
    other = acks.begin()
    own = acks.begin()
    acked = acks.acked()
    acks.end(own)
    waiter = _waiter(acks, acked)
    wait_until(lambda: acks.waiting == 1, timeout=10)
    assert waiter.is_alive()
    acks.end(other)  # none in flight: it starts once none began for QUIET_GAP
    waiter.join(timeout=10)
    assert not waiter.is_alive()


def test_the_work_waits_while_slack_requests_keep_coming(long_bound: None) -> None:
    acks = AcksInFlight()
    own = acks.begin()
    acked = acks.acked()
    acks.end(own)
    held = acks.begin()  # another acknowledgement after it, still being served
    waiter = _waiter(acks, acked)
    wait_until(lambda: acks.waiting == 1, timeout=10)
    for _ in range(20):  # more keep coming, one always in flight; the work stays put
        acks.end(acks.begin())
    assert waiter.is_alive()
    acks.end(held)
    waiter.join(timeout=10)
    assert not waiter.is_alive()


def test_the_wait_is_bounded_whatever_still_comes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(acks_first, "ACKS_FIRST_FOR", 0.05)
    acks = AcksInFlight()
    acks.begin()
    acked = acks.acked()
    acks.begin()  # requests in flight for ever
    waiter = _waiter(acks, acked)
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert acks.in_flight == 2


def test_past_its_bound_the_work_does_not_wait_at_all() -> None:
    acks = AcksInFlight()
    acks.begin()
    acks.begin()
    acks.wait_quiet(Acked(begun=0, until=time.monotonic() - 1))
    assert acks.waiting == 0


def test_work_that_must_not_wait_ends_the_wait_of_the_work_before_it(long_bound: None) -> None:
    acks = AcksInFlight()
    own = acks.begin()
    earlier = acks.acked()
    acks.end(own)
    other = acks.begin()
    waiter = _waiter(acks, earlier)
    wait_until(lambda: acks.waiting == 1, timeout=10)
    acks.hurry()  # a form to open was handed over after it
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    own = acks.begin()
    later = acks.acked()  # acknowledged after the hurry: waits as usual
    acks.end(own)
    waiter = _waiter(acks, later)
    wait_until(lambda: acks.waiting == 1, timeout=10)
    assert waiter.is_alive()
    acks.end(other)
    waiter.join(timeout=10)
    assert not waiter.is_alive()


def test_only_the_counted_path_is_counted_and_errors_still_end_it() -> None:
    acks = AcksInFlight()
    seen: list[tuple[int, int | None]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append((acks.in_flight, acks.acked().own))
        if environ.get("boom"):
            raise RuntimeError("boom")
        return [b"ok"]

    counted = acks.counting(app, "/slack/events")
    assert counted({"PATH_INFO": "/healthz"}, None) == [b"ok"]
    assert counted({"PATH_INFO": "/slack/events"}, None) == [b"ok"]
    with pytest.raises(RuntimeError):
        counted({"PATH_INFO": "/slack/events", "boom": True}, None)
    assert seen == [(0, None), (1, 1), (1, 2)]
    assert acks.in_flight == 0
    after = acks.acked()
    assert (after.begun, after.own) == (2, None)
