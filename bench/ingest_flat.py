"""Does ingest stay flat as open groups and the timeline grow? Senders in another process.

Run: ``python -m bench.ingest_flat [--alerts 10000] [--database-url URL] [--rounds N] [--profile]``
or ``python -m bench.ingest_flat --compare-database-url URL [--rounds N]``

Two runs on fresh databases, the same load each time:

* small: 100 open groups already in the database, an empty timeline;
* large: 10,000 open groups and 100,000 ``alert.firing`` timeline events on each
  service that the load goes to.

Each service is a Deployment in the emulator with three revisions, so every
group message asks for the "Last stable" revision (the path that reads alert
times from the timeline). The load is Alertmanager webhooks of 50 new alerts
each, spread over the services, posted by 4 threads in a separate process (a
client inside the bot's interpreter would take the interpreter lock from it).
The figure is alerts stored per second, measured from the first request to the
last answer, beside the small run's; then the ratio large / small. ``--rounds N``
runs N such pairs, alternating which of the two goes first, and prints each
pair's ratio and their median: this machine's speed drifts by a fifth over
minutes, which a single small-then-large pair reads as (un)flatness.

``--profile`` samples the bot's process with py-spy during the large run and
prints the functions with the most samples (inclusive).

The SQLite database lives in a temporary directory; ``--database-url`` points at
an existing, empty PostgreSQL database instead (its public schema is dropped and
recreated between runs). ``--compare-database-url`` runs both in one invocation, ``--rounds``
times, alternating which database goes first (A B, B A) and, with it, which
run goes first on each, and prints each round's ratio of the other
database's rate to SQLite's and their median (the target: PostgreSQL within 0.8x).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, insert

from rollback_bot.storage.models import AlertGroup, Incident, TimelineEvent
from sandbox.stack import ALERT_TOKEN, LoopbackStack, deployment_manifest

SERVICES = 40
LOADED = 4  # services the load goes to (each gets the large timeline)
BATCH = 50
SENDERS = 4


def catalog() -> dict[str, Any]:
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
            for i in range(SERVICES)
        ]
    }


def delivery(service: str, name: str, first: int, count: int) -> dict[str, Any]:
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": name,
                "service": service,
                "severity": "warning",
                "pod": f"p{n}",
            },
            "annotations": {"summary": f"{name} on {service}"},
            "startsAt": "2026-11-25T09:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": f"{service}-{name}-{n}",
        }
        for n in range(first, first + count)
    ]
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}",service="{service}"}}',
        "status": "firing",
        "receiver": "rollback-bot",
        "groupLabels": {"alertname": name, "service": service},
        "commonLabels": {"alertname": name, "service": service},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local",
        "alerts": alerts,
    }


def seed(url: str, *, groups: int, events_per_service: int) -> None:
    """Open groups (with their incidents) and old alert.firing events, written directly."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    old = now - timedelta(days=30)
    with engine.begin() as conn:
        incident_ids = {}
        for i in range(SERVICES):
            result = conn.execute(
                insert(Incident).values(
                    service=f"svc{i}", title="seeded", state="open", opened_at=old
                )
            )
            incident_ids[f"svc{i}"] = result.inserted_primary_key[0]
        rows = []
        for g in range(groups):
            service = f"svc{g % SERVICES}"
            rows.append(
                {
                    "incident_id": incident_ids[service],
                    "service": service,
                    "group_key": f"{service}|Seeded{g}",
                    "alertname": f"Seeded{g}",
                    "severity": "warning",
                    "status": "firing",
                    "first_seen": old,
                    "last_seen": old,
                    "channel": f"C{g % SERVICES:04d}",
                    "message_ts": f"{g}.000",
                    "labels": {},
                    "annotations": {},
                    "links": {},
                    "firing_count": 1,
                    "total_count": 1,
                    "source": "alertmanager",
                }
            )
        if rows:
            # RETURNING: sent as multi-row INSERTs (a statement per row on psycopg otherwise).
            conn.execute(insert(AlertGroup).returning(AlertGroup.id), rows).close()
        for s in range(LOADED):
            service = f"svc{s}"
            events = [
                {
                    "incident_id": incident_ids[service],
                    "service": service,
                    "at": old + timedelta(seconds=n),
                    "actor": "alertmanager",
                    "kind": "alert.firing",
                    "summary": "seeded firing",
                    "data": {"group": 0, "new": [f"fp{n}"], "firing": 1, "total": 1},
                }
                for n in range(events_per_service)
            ]
            for start in range(0, len(events), 10_000):
                conn.execute(
                    insert(TimelineEvent).returning(TimelineEvent.id),
                    events[start : start + 10_000],
                ).close()
    engine.dispose()


def send(url: str, payloads: list[dict[str, Any]], senders: int) -> tuple[float, int]:
    """In the sender process: post every payload from ``senders`` threads."""
    import requests

    queue = list(payloads)
    lock = threading.Lock()
    failures: list[str] = []

    def work() -> None:
        with requests.Session() as http:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                resp = http.post(
                    f"{url}/alerts/alertmanager",
                    json=body,
                    headers={"Authorization": f"Bearer {ALERT_TOKEN}"},
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
    return time.perf_counter() - started, len(failures)


def profile_top(raw: Path, limit: int = 12) -> list[str]:
    """Inclusive samples per function of the bot's code, from py-spy's raw output.

    Only stacks that pass through ``rollback_bot`` count (the request threads and the
    outbox), so the stand-ins sharing the process do not fill the list.
    """
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "rollback_bot" not in stack:
            continue
        n = int(count)
        total += n
        frames = set()
        for frame in stack.split(";"):
            function, _, where = frame.partition(" (")
            frames.add(f"{function} ({where.split(':')[0].rsplit('/', 1)[-1]}")
        for frame in frames:
            inclusive[frame] += n
    out = [f"{total} samples in the bot's code"]
    for frame, n in inclusive.most_common():
        if any(s in frame for s in ("threading.py", "<module>", "task.py", "channel.py")):
            continue
        out.append(f"  {100 * n / max(total, 1):5.1f}%  {frame}")
        if len(out) > limit:
            break
    return out


def run(name: str, url: str, *, groups: int, events: int, alerts: int, profile: bool) -> float:
    stack = LoopbackStack(catalog=catalog(), database_url=url)
    stack.start(bot=False)
    try:
        for i in range(SERVICES):
            stack.deploy("shop", deployment_manifest(f"svc{i}", f"shop/svc{i}:1", replicas=1))
            stack.set_image("shop", f"svc{i}", f"shop/svc{i}:2")
            stack.set_image("shop", f"svc{i}", f"shop/svc{i}:3")
        for i in range(SERVICES):
            stack.wait_available("shop", f"svc{i}", timeout=60)
        # The cluster has settled; its stand-in's reconcile loop (which would share the
        # bot's interpreter here, unlike a real cluster) is not what is measured.
        stack.kube.controllers.stop()
        seed(url, groups=groups, events_per_service=events)
        stack.start_bot()
        payloads = []
        for b in range(alerts // BATCH):
            service = f"svc{b % LOADED}"
            payloads.append(delivery(service, f"Load{b % 10}", b * BATCH, BATCH))
        spy = None
        raw = Path(tempfile.mkdtemp()) / "profile.txt"
        if profile and shutil.which("py-spy"):
            spy = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(os.getpid()),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        with get_context("spawn").Pool(1) as pool:
            cpu = time.process_time()
            elapsed, failures = pool.apply(send, (stack.url, payloads, SENDERS))
            cpu = time.process_time() - cpu
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=30)
        rate = alerts / elapsed
        print(
            f"{name}: {groups:,} open groups, {events:,} timeline events per loaded service: "
            f"{alerts:,} alerts in {elapsed:.2f} s = {rate:,.0f} alerts/s; CPU of the bot's "
            f"process (stand-ins included) {cpu:.2f} s = {1e6 * cpu / alerts:.0f} us/alert, "
            f"load {os.getloadavg()[0]:.1f}" + (f" ({failures} refused)" if failures else "")
        )
        if spy is not None and raw.exists():
            print("  profile of the bot's process, top functions by inclusive samples:")
            for line in profile_top(raw):
                print("  " + line)
        assert stack.services is not None
        stack.services.outbox.flush(timeout=60)
        return rate
    finally:
        stack.stop()


def reset(url: str) -> None:
    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        # The schema, not only the tables: the migrations also create functions and
        # triggers (the timeline's append-only guard).
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def measure(
    url: str, args: argparse.Namespace, *, label: str = "", large_first: bool = False
) -> tuple[float, float]:
    """The small run and the large one on ``url`` (small first unless ``large_first``);
    ``(small, large)`` alerts/s."""
    rates: dict[str, float] = {}
    for size in ("large", "small") if large_first else ("small", "large"):
        reset(url)
        large = size == "large"
        rates[size] = run(
            f"{label}{size}",
            url,
            groups=10_000 if large else 100,
            events=100_000 if large else 0,
            alerts=args.alerts,
            profile=args.profile and large,
        )
    reset(url)
    return rates["small"], rates["large"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--database-url")
    parser.add_argument(
        "--compare-database-url",
        metavar="URL",
        help="also run on this (PostgreSQL) database, interleaved with SQLite, and print "
        "the ratio of its rates to SQLite's",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="rounds, alternating which run goes first: small and large on one database, "
        "or the two databases with --compare-database-url",
    )
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print("load:", os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{tmp}/bench.db"
        if args.compare_database_url:
            reachable(args.compare_database_url)  # before minutes of SQLite, not after
            compare(sqlite_url, args.compare_database_url, args)
            return
        flatness(args.database_url or sqlite_url, args)


def flatness(url: str, args: argparse.Namespace) -> None:
    """``--rounds`` rounds on one database, small and large back to back, which goes first
    alternating (small large, large small, ...): the machine's speed drifts over minutes
    here, and a pair run close together is what that drift moves least."""
    rounds: list[tuple[float, float]] = []
    for n in range(args.rounds):
        rounds.append(measure(url, args, label=f"[{n + 1}] ", large_first=n % 2 == 1))
        small, large = rounds[-1]
        print(f"[{n + 1}] large / small {large / small:.2f}; load {os.getloadavg()[0]:.1f}")
    ratio = statistics.median(large / small for small, large in rounds)
    large = statistics.median(large for _, large in rounds)
    verdict = "met" if ratio >= 0.9 and large >= 3000 else "missed"
    print(
        f"large / small (median of {len(rounds)}) = {ratio:.2f}, large median {large:,.0f} "
        f"alerts/s (target >= 0.9 and >= 3,000 alerts/s: {verdict}); load: {os.getloadavg()}"
    )


def reachable(url: str) -> None:
    """Exit with the database's own answer when ``url`` cannot be connected to."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    engine = create_engine(url)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        raise SystemExit(f"cannot connect to the compared database: {exc.orig}") from None
    finally:
        engine.dispose()


def compare(sqlite_url: str, other_url: str, args: argparse.Namespace) -> None:
    """SQLite and ``other_url`` in turn (A B, then B A), the same load; ratios other / SQLite."""
    ratios: list[tuple[float, float]] = []
    for n in range(args.rounds):
        # Which database goes first alternates (A B, B A, ...), as the machine drifts.
        results = {}
        for name in ("other", "sqlite") if n % 2 else ("sqlite", "other"):
            url = sqlite_url if name == "sqlite" else other_url
            results[name] = measure(
                url, args, label=f"[{n + 1}] {name:<6} ", large_first=n % 2 == 1
            )
        lite, other = results["sqlite"], results["other"]
        ratios.append((other[0] / lite[0], other[1] / lite[1]))
        print(
            f"[{n + 1}] other / sqlite: small {ratios[-1][0]:.2f}, large {ratios[-1][1]:.2f}; "
            f"sqlite large / small {lite[1] / lite[0]:.2f}, other {other[1] / other[0]:.2f}; "
            f"load {os.getloadavg()[0]:.1f}"
        )
    small = statistics.median(r[0] for r in ratios)
    large = statistics.median(r[1] for r in ratios)
    verdict = "met" if min(small, large) >= 0.8 else "missed"
    print(
        f"other / sqlite (median of {len(ratios)}): small {small:.2f}, large {large:.2f} "
        f"(target >= 0.8: {verdict}); load: {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
