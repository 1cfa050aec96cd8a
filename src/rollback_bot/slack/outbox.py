"""Everything the bot says in channels goes through this outbox.

Slack allows about one message per second per channel, with short bursts, and
an alert storm or a busy rollback wants to say far more. So writes are queued
per channel, in order, behind a token bucket; repeated updates of the same
message coalesce into one (the message is rendered when it is sent, from the
latest state); a new message jumps ahead of updates so that a new alert group
is never stuck behind edits of old ones, and what asks a person to decide
(an approval request, a countdown, a failure: ``urgent``) goes before both, so
a storm of alert cards never delays it by more than the bucket's next token.
A 429 from Slack pauses the channel for its ``Retry-After`` and puts the write
back at the head of its queue, so a rate limit delays a message but never
drops it. A 5xx or a dropped connection (Slack down) does the same with a
growing pause, up to ``MAX_OUTAGE_RETRIES``; a write Slack refuses for good
(``channel_not_found``) or that outlived the outage budget is reported to
``on_error``, which puts it on the timeline and in ``/metrics``. A message
given up on in an outage is not forgotten: it is written again, rendered from
the current state, as soon as Slack takes any write in that channel (or every
``stale_retry`` seconds), so after recovery the channel never shows a state
that is no longer true. Posting never blocks the caller: the timeline was
already written before the outbox spoke.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

MAX_RATE_LIMITED_RETRIES = 5  # per write; past that Slack is refusing more than pacing
DEFAULT_RETRY_AFTER = 1.0  # seconds, when a 429 carries no usable Retry-After
MAX_OUTAGE_RETRIES = 8  # per write, 5xx or no connection: about two minutes of pauses
OUTAGE_PAUSE_CAP = 30.0  # seconds; pauses double from 1 s up to this

Rendered = tuple[str, list[dict[str, Any]]]  # fallback text, blocks


class Pacer(Protocol):
    """Send slots shared with other replicas (``storage.pacing.SharedPacing``)."""

    def wait_for_slot(self, channel: str) -> float: ...

    def hold(self, channel: str, until: float) -> None: ...


@dataclass
class _Item:
    kind: str  # "upsert" | "reply"
    key: str
    render: Callable[[], Rendered]
    on_posted: Callable[[str], None] | None = None
    parent_key: str | None = None
    broadcast: bool = False
    urgent: bool = False  # asks a person to decide: before every other write
    rate_limited: int = 0  # 429s seen by this write
    outages: int = 0  # 5xx answers or failed connections seen by this write


@dataclass
class _Channel:
    urgent: deque[_Item] = field(default_factory=deque)  # what a person must act on
    posts: deque[_Item] = field(default_factory=deque)  # then new messages
    others: deque[_Item] = field(default_factory=deque)  # updates and replies, FIFO
    pending_upserts: set[str] = field(default_factory=set)
    stale: dict[str, _Item] = field(default_factory=dict)  # upserts lost to an outage
    stale_retry_at: float = 0.0
    tokens: float = 0.0
    refilled_at: float = 0.0
    paused_until: float = 0.0  # Slack's Retry-After, on the outbox's monotonic clock
    worker: threading.Thread | None = None

    def empty(self) -> bool:
        return not self.urgent and not self.posts and not self.others

    def popleft(self) -> _Item:
        return (self.urgent or self.posts or self.others).popleft()

    def requeue(self, item: _Item, *, posted: bool) -> None:
        """Back at the head of the lane it came from."""
        lane = self.urgent if item.urgent else self.others if posted else self.posts
        lane.appendleft(item)


class Outbox:
    def __init__(
        self,
        client: WebClient,
        *,
        rate_per_second: float = 1.0,
        burst: int = 4,
        on_error: Callable[[str, str, Exception], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        outage_pause: Callable[[int], float] | None = None,
        stale_retry: float = 60.0,
        pacer: Pacer | None = None,
    ) -> None:
        self._client = client
        self._rate = rate_per_second
        self._burst = burst
        self._on_error = on_error
        self._monotonic = monotonic
        self._outage_pause = outage_pause or _doubling_pause
        self._stale_retry = stale_retry
        # With replicas, every send also claims a slot in the database, so that all of
        # them together keep to the channel's rate (the bucket above is per process).
        self._pacer = pacer
        self._lock = threading.Condition()
        self._channels: dict[str, _Channel] = {}
        self._ts: dict[str, tuple[str, str]] = {}  # key -> (channel, ts)
        self._posting: set[str] = set()  # first post in flight: later writes are updates
        self._in_flight = 0  # taken off a queue, not yet sent or reported
        self._closed = False
        self.sent: dict[str, int] = {}  # channel -> calls made, for benchmarks and metrics
        self.rate_limited: dict[str, int] = {}  # channel -> 429s answered by Slack
        self.outages: dict[str, int] = {}  # channel -> 5xx answers and failed connections

    # -- what callers use -------------------------------------------------
    def remember(self, key: str, channel: str, ts: str) -> None:
        """A message posted earlier (e.g. before a restart) that later writes should update."""
        with self._lock:
            self._ts[key] = (channel, ts)

    def ts_of(self, key: str) -> str | None:
        with self._lock:
            found = self._ts.get(key)
            return found[1] if found else None

    def upsert(
        self,
        *,
        key: str,
        channel: str,
        render: Callable[[], Rendered],
        on_posted: Callable[[str], None] | None = None,
        urgent: bool = False,
    ) -> None:
        """Post the message for ``key``, or update it in place if it exists."""
        with self._lock:
            ch = self._channel(channel)
            if key in ch.pending_upserts:
                return  # coalesced: the queued write renders the latest state
            ch.pending_upserts.add(key)
            item = _Item("upsert", key, render, on_posted, urgent=urgent)
            known = key in self._ts or key in self._posting
            (ch.urgent if urgent else ch.others if known else ch.posts).append(item)
            self._wake(channel, ch)

    def reply(
        self,
        *,
        parent_key: str,
        channel: str,
        render: Callable[[], Rendered],
        broadcast: bool = False,
        urgent: bool = False,
    ) -> None:
        """A line in the thread of ``parent_key``'s message (top level if it never got posted).

        An urgent reply keeps its place after its urgent parent: both go in one FIFO lane.
        """
        with self._lock:
            ch = self._channel(channel)
            item = _Item(
                "reply",
                parent_key,
                render,
                parent_key=parent_key,
                broadcast=broadcast,
                urgent=urgent,
            )
            (ch.urgent if urgent else ch.others).append(item)
            self._wake(channel, ch)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queue is drained (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._in_flight or any(
                not ch.empty() or ch.pending_upserts for ch in self._channels.values()
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
            workers = [ch.worker for ch in self._channels.values() if ch.worker]
        for w in workers:
            w.join(timeout=2)

    # -- the per-channel worker -------------------------------------------
    def _channel(self, channel: str) -> _Channel:
        ch = self._channels.get(channel)
        if ch is None:
            ch = self._channels[channel] = _Channel(
                tokens=self._burst, refilled_at=self._monotonic()
            )
        return ch

    def _wake(self, channel: str, ch: _Channel) -> None:
        if ch.worker is None or not ch.worker.is_alive():
            ch.worker = threading.Thread(
                target=self._run, args=(channel,), name=f"outbox-{channel}", daemon=True
            )
            ch.worker.start()
        self._lock.notify_all()

    def _take(self, channel: str) -> _Item | None:
        """Next item once the bucket allows it; None when idle long enough to exit."""
        with self._lock:
            ch = self._channels[channel]
            idle_since = time.monotonic()
            while not self._closed:
                now = self._monotonic()
                if now < ch.paused_until:
                    self._lock.wait(ch.paused_until - now)
                    continue
                ch.tokens = min(self._burst, ch.tokens + (now - ch.refilled_at) * self._rate)
                ch.refilled_at = now
                if not ch.empty():
                    if ch.tokens >= 1:
                        ch.tokens -= 1
                        item = ch.popleft()
                        if item.kind == "upsert":
                            ch.pending_upserts.discard(item.key)
                            if item.key not in self._ts:
                                self._posting.add(item.key)
                        self._in_flight += 1
                        return item
                    self._lock.wait((1 - ch.tokens) / self._rate)
                    continue
                if ch.stale:  # an outage left messages behind: try them again now and then
                    if now >= ch.stale_retry_at:
                        self._requeue_stale(ch)
                        continue
                    self._lock.wait(min(0.5, ch.stale_retry_at - now))
                    continue
                if time.monotonic() - idle_since > 5:
                    ch.worker = None
                    return None
                self._lock.wait(0.5)
            return None

    def _run(self, channel: str) -> None:
        while (item := self._take(channel)) is not None:
            try:
                self._wait_for_shared_slot(channel)
                self._send(channel, item)
                with self._lock:
                    ch = self._channels[channel]
                    if ch.stale:  # Slack is back: the messages it missed show the present
                        self._requeue_stale(ch)
            except SlackApiError as exc:
                if self._requeued_after_429(channel, item, exc):
                    continue
                status = getattr(exc.response, "status_code", None)
                if (
                    isinstance(status, int)
                    and status >= 500
                    and self._requeued_in_outage(channel, item)
                ):
                    continue
                self._report(channel, item, exc, str(exc.response.get("error", exc)))
            except OSError as exc:  # no connection: Slack (or the way to it) is down
                if self._requeued_in_outage(channel, item):
                    continue
                self._report(channel, item, exc, repr(exc))
            except Exception as exc:  # a bug in a renderer must not kill the channel's worker
                self._report(channel, item, exc, repr(exc))
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._posting.discard(item.key)
                    self.sent[channel] = self.sent.get(channel, 0) + 1
                    self._lock.notify_all()

    def _wait_for_shared_slot(self, channel: str) -> None:
        if self._pacer is None:
            return
        try:
            wait = self._pacer.wait_for_slot(channel)
        except Exception:  # the database is away: pace by this process alone meanwhile
            log.warning("claiming a shared send slot for %s failed", channel, exc_info=True)
            return
        if wait > 0:
            time.sleep(wait)

    def _requeued_after_429(self, channel: str, item: _Item, exc: SlackApiError) -> bool:
        """Honour Retry-After: pause the channel and put the write back first in line."""
        if getattr(exc.response, "status_code", None) != 429:
            return False
        item.rate_limited += 1
        if item.rate_limited > MAX_RATE_LIMITED_RETRIES:
            return False
        wait = _retry_after(exc)
        with self._lock:
            ch = self._channels[channel]
            ch.paused_until = max(ch.paused_until, self._monotonic() + wait)
            ch.tokens = 0.0
            self.rate_limited[channel] = self.rate_limited.get(channel, 0) + 1
            if item.kind == "upsert":
                if item.key in ch.pending_upserts:
                    return True  # a newer write of the same message is queued already
                ch.pending_upserts.add(item.key)
            self._put_back(ch, item)
        if self._pacer is not None:
            try:
                self._pacer.hold(channel, time.time() + wait)
            except Exception:
                log.warning("sharing Retry-After for %s failed", channel, exc_info=True)
        log.info("slack rate-limited %s; pausing the channel %.1f s", channel, wait)
        return True

    def _requeued_in_outage(self, channel: str, item: _Item) -> bool:
        """Slack is down: pause the channel, doubling each time, and keep the write first."""
        item.outages += 1
        if item.outages > MAX_OUTAGE_RETRIES:
            if item.kind == "upsert":
                with self._lock:
                    ch = self._channels[channel]
                    ch.stale[item.key] = item
                    ch.stale_retry_at = self._monotonic() + self._stale_retry
            return False
        wait = self._outage_pause(item.outages)
        with self._lock:
            ch = self._channels[channel]
            ch.paused_until = max(ch.paused_until, self._monotonic() + wait)
            self.outages[channel] = self.outages.get(channel, 0) + 1
            if item.kind == "upsert":
                if item.key in ch.pending_upserts:
                    return True  # a newer write of the same message is queued already
                ch.pending_upserts.add(item.key)
            self._put_back(ch, item)
        log.warning("slack unavailable for %s; retrying in %.0f s", channel, wait)
        return True

    def _requeue_stale(self, ch: _Channel) -> None:
        """Under the lock: every stale upsert queued again, with a fresh outage budget."""
        for key, item in ch.stale.items():
            item.outages = 0
            if key not in ch.pending_upserts:
                ch.pending_upserts.add(key)
                lane = ch.urgent if item.urgent else ch.others if key in self._ts else ch.posts
                lane.append(item)
        ch.stale.clear()
        ch.stale_retry_at = self._monotonic() + self._stale_retry

    def _put_back(self, ch: _Channel, item: _Item) -> None:
        posted = item.kind == "reply" or item.key in self._ts
        ch.requeue(item, posted=posted)

    def _report(self, channel: str, item: _Item, exc: Exception, what: str) -> None:
        log.warning("slack write for %s in %s failed: %s", item.key, channel, what)
        if self._on_error:
            self._on_error(channel, item.key, exc)

    def _send(self, channel: str, item: _Item) -> None:
        text, blocks = item.render()
        if item.kind == "reply":
            parent = self.ts_of(item.parent_key or "")
            self._client.chat_postMessage(
                channel=channel,
                text=text,
                blocks=blocks or None,
                thread_ts=parent,
                reply_broadcast=item.broadcast if parent else None,
            )
            return
        known = self.ts_of(item.key)
        if known:
            self._client.chat_update(channel=channel, ts=known, text=text, blocks=blocks)
            return
        resp = self._client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        ts = str(resp["ts"])
        with self._lock:
            self._ts[item.key] = (str(resp.get("channel", channel)), ts)
        if item.on_posted:
            item.on_posted(ts)


def _doubling_pause(outages: int) -> float:
    """1, 2, 4, ... seconds, capped: Slack's own incidents last minutes, not seconds."""
    return float(min(OUTAGE_PAUSE_CAP, 2.0 ** (outages - 1)))


def _retry_after(exc: SlackApiError) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(float(raw), 0.0) if raw is not None else DEFAULT_RETRY_AFTER
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
