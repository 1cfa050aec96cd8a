"""The outbox: per-channel pacing, coalesced updates, urgent and new messages first, 429s
honoured, Slack outages outlasted."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from rollback_bot.slack.outbox import Outbox, Rendered


class FakeSlack:
    """Records chat calls with their monotonic time; can answer 429 on demand."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.rate_limit_next: list[float] = []  # Retry-After of the next 429s
        self.down_next: list[int | None] = []  # the next calls fail: 5xx status, None = no link
        self._ts = itertools.count(1)
        self._lock = threading.Lock()

    def _record(self, method: str, **args: Any) -> dict[str, Any]:
        with self._lock:
            call = {"method": method, "at": time.monotonic(), **args}
            if self.down_next:
                status = self.down_next.pop(0)
                call["status"] = status or 0
                self.calls.append(call)
                if status is None:
                    raise ConnectionRefusedError("connection refused")
                raise SlackApiError(
                    "unavailable",
                    SlackResponse(
                        client=None,
                        http_verb="POST",
                        api_url=method,
                        req_args={},
                        data={"ok": False, "error": "service_unavailable"},
                        headers={},
                        status_code=status,
                    ),
                )
            if self.rate_limit_next:
                retry_after = self.rate_limit_next.pop(0)
                call["status"] = 429
                self.calls.append(call)
                raise SlackApiError(
                    "ratelimited",
                    SlackResponse(
                        client=None,
                        http_verb="POST",
                        api_url=method,
                        req_args={},
                        data={"ok": False, "error": "ratelimited"},
                        headers={"Retry-After": str(retry_after)},
                        status_code=429,
                    ),
                )
            call["status"] = 200
            self.calls.append(call)
            return {"ok": True, "channel": args["channel"], "ts": f"{next(self._ts)}.000"}

    def chat_postMessage(self, **args: Any) -> dict[str, Any]:
        return self._record("chat.postMessage", **args)

    def chat_update(self, **args: Any) -> dict[str, Any]:
        return self._record("chat.update", **args)

    def ok_calls(self, channel: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["status"] == 200 and channel in (None, c["channel"])]


@pytest.fixture
def slack() -> FakeSlack:
    return FakeSlack()


@pytest.fixture
def outbox(slack: FakeSlack) -> Iterator[Outbox]:
    box = Outbox(slack, rate_per_second=20.0, burst=2)  # type: ignore[arg-type]
    yield box
    box.close()


def text(value: str) -> Rendered:
    return value, []


def within_bucket(times: list[float], *, rate: float, burst: int) -> bool:
    """No window of calls exceeds what a token bucket of this rate and burst allows.

    Times are taken where the calls land, a thread switch after the outbox spent the
    token, so two calls can land closer than they left: 20 ms of scheduling jitter is
    allowed for, in tokens.
    """
    slack_margin = 0.020 * rate
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            allowed = burst + (times[j] - start) * rate + slack_margin
            if j - i + 1 > allowed:
                return False
    return True


def test_updates_of_one_message_coalesce_into_the_latest_state(
    outbox: Outbox, slack: FakeSlack
) -> None:
    state = {"count": 0}

    def render() -> Rendered:
        return text(f"{state['count']} alerts")

    for _ in range(50):
        state["count"] += 1
        outbox.upsert(key="group:1", channel="C1", render=render)
    assert outbox.flush(timeout=10)

    calls = slack.ok_calls("C1")
    assert 1 <= len(calls) <= 3  # the first post, then at most a couple of edits
    assert calls[0]["method"] == "chat.postMessage"
    assert calls[-1]["text"] == "50 alerts"
    assert all(c["method"] == "chat.update" for c in calls[1:])


def test_channel_pacing_never_exceeds_the_bucket(outbox: Outbox, slack: FakeSlack) -> None:
    for i in range(12):
        outbox.upsert(key=f"group:{i}", channel="C1", render=lambda i=i: text(f"g{i}"))
        outbox.upsert(key=f"other:{i}", channel="C2", render=lambda i=i: text(f"o{i}"))
    assert outbox.flush(timeout=20)

    for channel in ("C1", "C2"):
        times = [c["at"] for c in slack.ok_calls(channel)]
        assert len(times) == 12
        assert within_bucket(times, rate=20.0, burst=2)
    assert outbox.sent == {"C1": 12, "C2": 12}


def test_a_new_message_jumps_ahead_of_queued_updates(slack: FakeSlack) -> None:
    box = Outbox(slack, rate_per_second=5.0, burst=1)  # type: ignore[arg-type]
    try:
        for i in range(4):
            box.remember(f"old:{i}", "C1", f"9{i}.000")
            box.upsert(key=f"old:{i}", channel="C1", render=lambda i=i: text(f"edit {i}"))
        box.upsert(key="group:new", channel="C1", render=lambda: text("new group"))
        assert box.flush(timeout=10)
    finally:
        box.close()
    methods = [(c["method"], c["text"]) for c in slack.ok_calls("C1")]
    assert ("chat.postMessage", "new group") in methods[:2]
    assert len(methods) == 5


def test_replies_go_in_the_parent_thread(outbox: Outbox, slack: FakeSlack) -> None:
    outbox.upsert(key="rollback:1", channel="C1", render=lambda: text("R-1"))
    outbox.reply(parent_key="rollback:1", channel="C1", render=lambda: text("step 1"))
    assert outbox.flush(timeout=10)
    post, reply = slack.ok_calls("C1")
    assert reply["thread_ts"] == outbox.ts_of("rollback:1") == "1.000"
    assert reply["text"] == "step 1" and post["text"] == "R-1"


def test_429_pauses_the_channel_for_retry_after_and_loses_nothing(
    outbox: Outbox, slack: FakeSlack
) -> None:
    slack.rate_limit_next = [0.3]
    posted: list[str] = []
    outbox.upsert(
        key="group:1", channel="C1", render=lambda: text("first"), on_posted=posted.append
    )
    outbox.upsert(key="group:2", channel="C1", render=lambda: text("second"))
    assert outbox.flush(timeout=10)

    limited = [c for c in slack.calls if c["status"] == 429]
    ok = slack.ok_calls("C1")
    assert len(limited) == 1
    assert sorted(c["text"] for c in ok) == ["first", "second"]
    assert ok[0]["at"] - limited[0]["at"] >= 0.3  # nothing was sent during the pause
    assert posted == [outbox.ts_of("group:1")]
    assert outbox.rate_limited == {"C1": 1}
    assert outbox.sent["C1"] == 3  # the refused call counts as a call made


def test_a_write_rate_limited_past_the_limit_is_reported(slack: FakeSlack) -> None:
    errors: list[tuple[str, str]] = []
    box = Outbox(
        slack,  # type: ignore[arg-type]
        rate_per_second=50.0,
        burst=1,
        on_error=lambda channel, key, exc: errors.append((channel, key)),
    )
    try:
        slack.rate_limit_next = [0.01] * 10
        box.upsert(key="group:1", channel="C1", render=lambda: text("never"))
        assert box.flush(timeout=10)
    finally:
        box.close()
    assert errors == [("C1", "group:1")]
    assert slack.ok_calls() == []


def test_a_message_meant_during_a_slack_outage_is_posted_once_slack_is_back(
    slack: FakeSlack,
) -> None:
    errors: list[str] = []
    pauses: list[int] = []
    box = Outbox(
        slack,  # type: ignore[arg-type]
        rate_per_second=50.0,
        burst=4,
        on_error=lambda channel, key, exc: errors.append(key),
        outage_pause=lambda n: (pauses.append(n), 0.02 * n)[1],
    )
    try:
        slack.down_next = [503, 500, None, 502]  # 5xx answers and a refused connection
        box.upsert(key="group:1", channel="C1", render=lambda: text("new alert"))
        box.reply(parent_key="group:1", channel="C1", render=lambda: text("in the thread"))
        assert box.flush(timeout=10)
    finally:
        box.close()
    ok = slack.ok_calls("C1")
    assert [c["text"] for c in ok] == ["new alert", "in the thread"]
    assert ok[1]["thread_ts"] == box.ts_of("group:1") == "1.000"  # the reply found its parent
    assert pauses == [1, 2, 3, 4]  # each failure of the same write waits longer
    assert errors == []
    assert box.outages == {"C1": 4}


def test_a_write_that_outlives_the_outage_budget_is_reported_once(slack: FakeSlack) -> None:
    errors: list[str] = []
    box = Outbox(
        slack,  # type: ignore[arg-type]
        rate_per_second=50.0,
        burst=4,
        on_error=lambda channel, key, exc: errors.append(key),
        outage_pause=lambda n: 0.0,
    )
    try:
        slack.down_next = [503] * 50
        box.upsert(key="rollback:1", channel="C1", render=lambda: text("awaiting approval"))
        assert box.flush(timeout=10)
    finally:
        box.close()
    assert errors == ["rollback:1"]
    assert len(slack.calls) == 1 + 8  # the first try and MAX_OUTAGE_RETRIES more


def test_what_asks_a_person_to_decide_goes_before_a_storm_of_cards(slack: FakeSlack) -> None:
    box = Outbox(slack, rate_per_second=5.0, burst=1)  # type: ignore[arg-type]
    try:
        for i in range(8):
            box.upsert(key=f"group:{i}", channel="C1", render=lambda i=i: text(f"card {i}"))
        box.upsert(key="rollback:1", channel="C1", render=lambda: text("approve?"), urgent=True)
        box.reply(
            parent_key="rollback:1", channel="C1", render=lambda: text("countdown"), urgent=True
        )
        assert box.flush(timeout=10)
    finally:
        box.close()
    texts = [c["text"] for c in slack.ok_calls("C1")]
    # At most the card already taken when the urgent writes arrived goes first.
    assert texts.index("approve?") <= 1
    assert texts.index("countdown") == texts.index("approve?") + 1
    assert len(texts) == 10


def test_after_an_outage_the_messages_it_lost_show_the_current_state(slack: FakeSlack) -> None:
    state = ["awaiting approval"]
    box = Outbox(
        slack,  # type: ignore[arg-type]
        rate_per_second=50.0,
        burst=4,
        outage_pause=lambda n: 0.0,
        stale_retry=3600.0,  # only Slack's first success may bring it back here
    )
    try:
        box.upsert(key="rollback:1", channel="C1", render=lambda: text(state[0]))
        assert box.flush(timeout=10)
        slack.down_next = [503] * 9  # the update outlives its retries
        state[0] = "rolled back"
        box.upsert(key="rollback:1", channel="C1", render=lambda: text(state[0]))
        assert box.flush(timeout=10)
        assert [c["text"] for c in slack.ok_calls("C1")] == ["awaiting approval"]

        state[0] = "verified"
        box.upsert(key="group:2", channel="C1", render=lambda: text("another alert"))
        assert box.flush(timeout=10)
    finally:
        box.close()
    ok = [(c["method"], c["text"]) for c in slack.ok_calls("C1")]
    assert ok[-2:] == [("chat.postMessage", "another alert"), ("chat.update", "verified")]


def test_a_lost_message_is_tried_again_even_if_nothing_else_is_said(slack: FakeSlack) -> None:
    box = Outbox(
        slack,  # type: ignore[arg-type]
        rate_per_second=50.0,
        burst=4,
        outage_pause=lambda n: 0.0,
        stale_retry=0.2,
    )
    try:
        slack.down_next = [None] * 9  # no connection for the whole outage budget
        box.upsert(key="group:1", channel="C1", render=lambda: text("alert"))
        posted = None
        for _ in range(100):
            posted = slack.ok_calls("C1")
            if posted:
                break
            time.sleep(0.05)
    finally:
        box.close()
    assert posted and posted[0]["text"] == "alert"
