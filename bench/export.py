"""Postmortem export speed: 10,000 and 100,000 timeline events, each format.

Run: ``python bench/export.py [--sizes 10000,100000] [--runs 3] [--profile]``
(SQLite in a temporary directory, seeded with bulk Core inserts; the processes read
compiled bytecode of our modules, as an installed package does: ``bench/_bytecode.py``,
``--no-bytecode`` for the other way).

For each size and format (md, json, html) it prints:

- *process*: ``rollback-bot export INC-1 --format F -o FILE`` as a fresh process (the
  figure a person at a terminal sees: interpreter start, imports, query, render, write),
  wall and CPU time (medians of ``--runs``) and that process's peak RSS (``wait4`` in a
  small launcher that forks it, so the bench's own memory is not counted);
- *in-process*: load + render + write to a file inside this interpreter, wall time
  (median) and the peak of Python allocations (``tracemalloc``, a separate run);

then ``rollback-bot verify-timeline INC`` as a process on each size's incident (its
chain is sealed as the bot's writer seals it, so every entry is checked).
``--profile`` prints a pyinstrument profile of one in-process export of the first size
(Markdown and JSON), the evidence for where the time goes. The load average is printed
first: figures from a loaded machine say more about the load than about the export.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sqlalchemy import insert

from bench._bytecode import child_env, describe
from rollback_bot.incidents import postmortem, postmortem_load
from rollback_bot.storage import db
from rollback_bot.storage.chain import entry_hash
from rollback_bot.storage.models import AlertGroup, Approval, Incident, Rollback, TimelineEvent
from rollback_bot.storage.reader import open_reader

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
FORMATS = ("md", "json", "html")


def seed(url: str, events: int) -> int:
    """One incident with ``events`` timeline rows of the kinds a long incident has."""
    engine = db.make_engine(url)
    with engine.begin() as conn:
        incident_id = conn.execute(
            insert(Incident).returning(Incident.id),
            {
                "service": "checkout",
                "title": f"storm of {events} events",
                "state": "resolved",
                "opened_at": T0,
                "acknowledged_at": T0 + timedelta(seconds=90),
                "acknowledged_by": "U0ALICE",
                "mitigated_at": T0 + timedelta(seconds=600),
                "resolved_at": T0 + timedelta(seconds=events),
            },
        ).scalar_one()
        conn.execute(
            insert(AlertGroup),
            {
                "incident_id": incident_id,
                "service": "checkout",
                "group_key": f"g{incident_id}",
                "alertname": "HighErrorRate",
                "severity": "critical",
                "first_seen": T0,
                "last_seen": T0,
                "source": "alertmanager",
                "labels": {},
                "annotations": {},
                "links": {},
            },
        )
        rollback_ids = []
        for i, drill in enumerate((True, False)):
            rollback_ids.append(
                conn.execute(
                    insert(Rollback).returning(Rollback.id),
                    {
                        "incident_id": incident_id,
                        "service": "checkout",
                        "environment": "production",
                        "strategy": "gradual",
                        "state": "done",
                        "requested_by": "U0ALICE",
                        "drill": drill,
                        "from_revision": "7",
                        "to_revision": "6",
                        "from_image": "shop:2.0",
                        "to_image": "shop:1.9",
                        "created_at": T0 + timedelta(seconds=60 + i),
                        "updated_at": T0 + timedelta(seconds=60 + i),
                        "finished_at": T0 + timedelta(seconds=590),
                        "plan": {"changes": ["~ image shop:2.0 -> shop:1.9"], "steps": [10, 50]},
                        "version": 1,
                    },
                ).scalar_one()
            )
        conn.execute(
            insert(Approval),
            {"rollback_id": rollback_ids[1], "actor": "U0BOB", "decision": "approve", "at": T0},
        )
        kinds = [
            ("alertmanager", "alert.firing", None),
            ("rollback-bot", "health.check", rollback_ids[1]),
            ("rollback-bot", "kube.changed", rollback_ids[1]),
            ("U0ALICE", "rollback.step", rollback_ids[1]),
            ("U0CAROL", "note.added", None),
        ]
        batch: list[dict[str, Any]] = []
        prev: str | None = None  # the incident's hash chain, sealed as the bot's writer does
        for n in range(events):
            actor, kind, rid = kinds[n % len(kinds)]
            row = {
                "incident_id": incident_id,
                "rollback_id": rid,
                "service": "checkout",
                "at": T0 + timedelta(seconds=n),
                "actor": actor,
                "kind": kind,
                "summary": f"{kind} #{n}: error rate 4.2% on checkout/production, "
                "wanted under 1%: failed",
                "data": {
                    "name": "error-rate",
                    "source": "prometheus",
                    "query": 'sum(rate(http_requests_total{code=~"5.."}[1m]))',
                    "value": 0.042,
                    "threshold": "fails when > 0.01",
                    "result": "failed",
                    "n": n,
                },
            }
            row["prev_hash"] = prev
            row["hash"] = prev = entry_hash(
                prev_hash=prev,
                kind=kind,
                actor=actor,
                at=row["at"],
                incident_id=incident_id,
                rollback_id=rid,
                service="checkout",
                summary=row["summary"],
                data=row["data"],
            )
            batch.append(row)
            if len(batch) == 5000:
                conn.execute(insert(TimelineEvent), batch)
                batch = []
        if batch:
            conn.execute(insert(TimelineEvent), batch)
    engine.dispose()
    return int(incident_id)


ENV: dict[str, str] = dict(os.environ)  # the child processes' (main() adds the bytecode cache)


#: Runs a command as its child and prints its wall time, peak RSS (KiB) and CPU time. The
#: command is forked from this small interpreter, not from the bench: a child's ``ru_maxrss``
#: counts the pages of the process it was forked from (before its exec), and the bench holds
#: the seeded rows (70-250 MB), which would be reported as the export's.
_LAUNCHER = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
print(wall, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, code, file=sys.stderr)
"""


def launched(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, int, str]:
    """(wall s, peak RSS MB, CPU s, exit code, stdout) of ``cmd`` run through the launcher."""
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *cmd], env=env, capture_output=True, text=True
    )
    wall, rss, cpu, code = done.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) / 1024, float(cpu), int(code), done.stdout


def as_process(url: str, incident: int, fmt: str, out: Path) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MB, CPU seconds) of one ``rollback-bot export`` process."""
    env = {**ENV, "DATABASE_URL": url}
    cmd = [sys.executable, "-m", "rollback_bot.cli", "export", str(incident), "--format", fmt]
    wall, rss, cpu, code, _out = launched([*cmd, "-o", str(out)], env)
    if code != 0:
        raise SystemExit(f"export failed: {code}")
    return wall, rss, cpu


def in_process(url: str, incident: int, fmt: str, out: Path) -> None:
    """What the command does after start-up: read (storage.reader, as the CLI reads: the
    standard library's sqlite3 on a SQLite file), analyse, render, redact, write."""
    with open_reader(url, check_schema=False) as reader:
        pm = postmortem_load.load(reader, incident)
    assert pm is not None
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(postmortem.export(pm, fmt))  # as the CLI writes it


def measure_in_process(
    url: str, incident: int, fmt: str, out: Path, runs: int
) -> tuple[float, float, float]:
    in_process(url, incident, fmt, out)  # warm: imports, caches
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        in_process(url, incident, fmt, out)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    tracemalloc.start()
    in_process(url, incident, fmt, out)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak / 1e6, statistics.median(cpu)


def verify_timeline(url: str, incident: int) -> str:
    """``rollback-bot verify-timeline INC`` as a process: wall and CPU time, peak RSS."""
    env = {**ENV, "DATABASE_URL": url}
    cmd = [sys.executable, "-m", "rollback_bot.cli", "verify-timeline", str(incident)]
    wall, rss, cpu, code, out = launched(cmd, env)
    first = out.strip().splitlines()[0] if out.strip() else ""
    return f"wall {wall:.3f} s, CPU {cpu:.3f} s, {rss:.1f} MB, exit {code}: {first}"


def profile(url: str, incident: int, out: Path) -> None:
    from pyinstrument import Profiler

    for fmt in ("md", "json"):
        profiler = Profiler(interval=0.0005)
        profiler.start()
        in_process(url, incident, fmt, out)
        profiler.stop()
        print(f"\n--- profile: in-process export, {fmt} ---")
        print(profiler.output_text(unicode=False, color=False, show_all=False))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--no-bytecode", action="store_true", help="compile in every process")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    load = os.getloadavg()[0]
    print(
        f"load average {load:.2f} on {os.cpu_count()} CPUs; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = None if args.no_bytecode else Path(tmp) / "pycache"
        ENV.update(child_env(dict(os.environ), cache))
        print(describe(cache))
        url = f"sqlite:///{tmp}/bench.db"
        db.migrate(url)
        out = Path(tmp) / "out"
        incidents = {n: seed(url, n) for n in sizes}
        if args.profile:
            profile(url, incidents[sizes[0]], out)
        cols = ("events", "format", "proc wall", "proc CPU", "RSS MB", "in wall", "in CPU")
        print("\n" + " ".join(f"{c:>9}" for c in cols) + f" {'alloc MB':>9} {'bytes':>10}")
        for n in sizes:
            for fmt in FORMATS:
                runs = [as_process(url, incidents[n], fmt, out) for _ in range(args.runs)]
                wall = statistics.median(r[0] for r in runs)
                rss = max(r[1] for r in runs)
                cpu = statistics.median(r[2] for r in runs)
                inproc, alloc, in_cpu = measure_in_process(url, incidents[n], fmt, out, args.runs)
                size = out.stat().st_size
                results.append(
                    {
                        "events": n,
                        "format": fmt,
                        "process_s": round(wall, 4),
                        "process_cpu_s": round(cpu, 4),
                        "rss_mb": round(rss, 1),
                        "in_process_s": round(inproc, 4),
                        "in_process_cpu_s": round(in_cpu, 4),
                        "alloc_mb": round(alloc, 1),
                        "bytes": size,
                    }
                )
                print(
                    f"{n:>9} {fmt:>9} {wall:>9.3f} {cpu:>9.3f} {rss:>9.1f} {inproc:>9.3f} "
                    f"{in_cpu:>9.3f} {alloc:>9.1f} {size:>10,}",
                    flush=True,
                )
        if len(sizes) > 1:
            lo, hi = sizes[0], sizes[-1]
            print(f"\nin-process ratio {hi:,} / {lo:,} events (linear = {hi / lo:.0f}):")
            for fmt in FORMATS:
                a = next(r for r in results if r["events"] == lo and r["format"] == fmt)
                b = next(r for r in results if r["events"] == hi and r["format"] == fmt)
                print(
                    f"  {fmt}: {b['in_process_cpu_s'] / a['in_process_cpu_s']:.1f}x CPU time, "
                    f"{b['alloc_mb'] / max(a['alloc_mb'], 0.001):.1f}x memory"
                )
        print()
        for n in sizes:
            print(f"verify-timeline, {n:,} events: {verify_timeline(url, incidents[n])}")
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
