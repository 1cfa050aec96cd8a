"""Alert ingest throughput and alert-storm behaviour, on the loopback stack.

Run: ``python bench/alert_ingest.py`` (SQLite in a temporary directory).

1. Sustained ingest: Alertmanager webhooks of 50 alerts each, posted over HTTP
   by 4 senders in a separate process; prints alerts per second taken in (stored, de-duplicated,
   grouped, incidents opened) by the bot.
2. Storm: 10,000 alerts in 200 groups. Topology: 40 services, each with its
   own channel (as teams usually have), 5 alert names per service, so 200
   groups of 50 alerts and 5 new groups per channel. Each group arrives as
   Alertmanager sends it: in webhooks of 25 alerts (its ``group_by`` on
   alertname and service), all deliveries shuffled and sent at once. Prints
   the Slack calls made per channel (posts and updates), whether any channel
   exceeded its token bucket (1 call/s, burst 4: the outbox's setting), and the
   longest delay between a group's first delivery and its first message.

Five new groups per channel fit in the burst, so every first message goes
out at once. A channel that gets many more new groups at the same moment
(one service failing in 30 ways) waits about one second per group beyond the
burst; the outbox posts new groups before any update, so that wait is the
floor Slack's limit imposes, and a digest message would be the next step if
that case matters.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.stack import LoopbackStack

SERVICES = 40
NAMES_PER_SERVICE = 5
ALERTS_PER_GROUP = 50
DELIVERY_SIZE = 25
RATE, BURST = 1.0, 4  # the outbox's per-channel bucket


def catalog(services: int) -> dict[str, Any]:
    return {
        "services": [
            {
                "name": f"svc{i}",
                "namespace": "shop",
                "deployment": f"svc{i}",
                "environment": "staging",
                "channel": f"C{i:04d}",
                "match": {"service": f"svc{i}"},
            }
            for i in range(services)
        ]
    }


def delivery(service: str, name: str, first: int, count: int, tag: str = "") -> dict[str, Any]:
    alerts = []
    for n in range(first, first + count):
        labels = {"alertname": name, "service": service, "severity": "critical", "pod": f"p{n}"}
        alerts.append(
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{name} on {service}"},
                "startsAt": "2026-11-25T09:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.local/graph",
                "fingerprint": f"{tag}{service}-{name}-{n}",
            }
        )
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}",service="{service}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "rollback-bot",
        "groupLabels": {"alertname": name, "service": service},
        "commonLabels": {"alertname": name, "service": service},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local",
        "alerts": alerts,
    }


def post_from_threads(
    url: str, token: str, payloads: Sequence[tuple[str, dict[str, Any]]], senders: int
) -> tuple[dict[str, float], list[str], float]:
    """In the sender process: post every payload from ``senders`` threads, in order.

    Returns the first send time (wall clock, comparable across processes) per group,
    the refusals, and the seconds from the first request to the last answer.
    """
    import requests

    first_sent: dict[str, float] = {}
    lock = threading.Lock()
    queue = list(payloads)
    failures: list[str] = []

    def work() -> None:
        with requests.Session() as http:
            while True:
                with lock:
                    if not queue:
                        return
                    group, body = queue.pop(0)
                    first_sent.setdefault(group, time.time())
                resp = http.post(
                    f"{url}/alerts/alertmanager",
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=60,
                )
                if resp.status_code != 200:
                    failures.append(resp.text)

    threads = [threading.Thread(target=work) for _ in range(senders)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return first_sent, failures, time.perf_counter() - started


def send_all(
    stack: LoopbackStack, payloads: Sequence[tuple[str, dict[str, Any]]], senders: int = 4
) -> tuple[dict[str, float], float]:
    """Post every payload from ``senders`` threads of a separate process (a client in the
    bot's interpreter would take its lock); returns the first send time per group and the
    sending time."""
    with get_context("spawn").Pool(1) as pool:
        first_sent, failures, elapsed = pool.apply(
            post_from_threads, (stack.url, stack.alert_token, list(payloads), senders)
        )
    if failures:
        raise SystemExit(f"{len(failures)} deliveries refused, e.g. {failures[0]}")
    return first_sent, elapsed


def sustained(stack: LoopbackStack, batches: int = 200) -> None:
    payloads = [
        (f"s{b}", delivery(f"svc{b % SERVICES}", "Sustained", b * 50, 50, tag="sus-"))
        for b in range(batches)
    ]
    _, elapsed = send_all(stack, payloads)
    total = batches * 50
    print(f"sustained ingest: {total} alerts in {elapsed:.2f} s = {total / elapsed:,.0f} alerts/s")


def excess(times: list[float]) -> float:
    """Most calls, in any window, beyond what the bucket allows (0: within it).

    Times are when the stand-in received each call, so network jitter between
    two calls the outbox sent a bucket's interval apart shows up as a fraction.
    """
    worst = 0.0
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            worst = max(worst, (j - i + 1) - (BURST + (times[j] - start) * RATE))
    return worst


def storm(stack: LoopbackStack) -> None:
    payloads: list[tuple[str, dict[str, Any]]] = []
    for s in range(SERVICES):
        for k in range(NAMES_PER_SERVICE):
            service, name = f"svc{s}", f"Storm{k}"
            for first in range(0, ALERTS_PER_GROUP, DELIVERY_SIZE):
                payloads.append(
                    (f"{service}|{name}", delivery(service, name, first, DELIVERY_SIZE))
                )
    random.Random(7).shuffle(payloads)
    stack.slack.clear_calls()
    first_sent, ingest = send_all(stack, payloads)
    assert stack.services is not None
    drained = stack.services.outbox.flush(timeout=300)
    total = SERVICES * NAMES_PER_SERVICE * ALERTS_PER_GROUP
    print(
        f"storm: {total} alerts in {len(first_sent)} groups over {SERVICES} channels, "
        f"ingested in {ingest:.2f} s ({total / ingest:,.0f} alerts/s); outbox drained: {drained}"
    )

    calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in stack.slack.calls:
        if call["method"] in ("chat.postMessage", "chat.update"):
            calls[call["args"].get("channel", "?")].append(call)
    posts = {ch: sum(c["method"] == "chat.postMessage" for c in cs) for ch, cs in calls.items()}
    updates = {ch: sum(c["method"] == "chat.update" for c in cs) for ch, cs in calls.items()}
    per_channel = [len(cs) for cs in calls.values()]
    print(
        f"slack calls per channel: min {min(per_channel)}, max {max(per_channel)}, "
        f"total {sum(per_channel)} (posts {sum(posts.values())}, updates {sum(updates.values())}); "
        f"posts per channel {sorted(set(posts.values()))} for {NAMES_PER_SERVICE} groups each"
    )
    worst = {ch: excess(sorted(c["at"] for c in cs)) for ch, cs in calls.items()}
    over = [ch for ch, x in worst.items() if x >= 1]
    print(
        f"channels with a whole call beyond {RATE:g} call/s, burst {BURST}: {len(over)}; "
        f"largest excess as received {max(worst.values()):.2f} call (arrival jitter)"
    )

    delays = []
    for ch, cs in calls.items():
        service = f"svc{int(ch[1:])}"
        for call in cs:
            if call["method"] != "chat.postMessage":
                continue
            text = call["args"].get("text", "")
            name = next(
                (f"Storm{k}" for k in range(NAMES_PER_SERVICE) if f"Storm{k}" in text), None
            )
            if name and f"{service}|{name}" in first_sent:
                delays.append(call["at"] - first_sent[f"{service}|{name}"])
    print(
        f"first message of a new group: {len(delays)} measured, "
        f"longest delay {max(delays):.2f} s, median {sorted(delays)[len(delays) // 2]:.2f} s"
    )


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    print("load:", os.getloadavg())
    cpu = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        with LoopbackStack(catalog=catalog(SERVICES), database_url=url) as stack:
            sustained(stack)
        Path(tmp, "bench.db").unlink()
        with LoopbackStack(catalog=catalog(SERVICES), database_url=url) as stack:
            storm(stack)
    print(
        f"load: {os.getloadavg()}; CPU time of the bot's process (stand-ins included): "
        f"{time.process_time() - cpu:.1f} s"
    )


if __name__ == "__main__":
    main()
