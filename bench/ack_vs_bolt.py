"""Acks of ``rollback-bot serve`` beside bare slack-bolt + Flask + waitress, paired in one run.

    python -m bench.ack_vs_bolt [--rounds 4] [--requests 750] [--concurrency 50]
                                [--rate 100] [--rate-seconds 10] [--profile FILE]
                                [--before COMMIT]

Two processes are started on the same machine: ``rollback-bot serve`` (its
environment only, on the loopback Slack stand-in and Kubernetes emulator, a fresh
SQLite database) and ``bench/bolt_baseline.py`` (a bare bolt App, signature checks
on with the same signing secret, in Flask behind waitress with serve's settings,
answering with a plain ack). One load generator in a third process sends both the
same signed ``/rollback help`` commands and Approve clicks (each with its own
trigger_id), alternating: baseline, serve, serve, baseline, ... (A B B A per
pair of rounds, so a drift in machine load hits both sides alike).

Back to back (``--concurrency`` clients sending as fast as answers come): the
throughput of each, their ratio per round and the median ratio (target >= 0.7),
p50/p90/p99 and the server process's CPU time per request. Then at ``--rate``
requests/s with up to ``--concurrency`` in flight, the same alternation: p99
(target < 20 ms for serve). The 1-minute load average is printed beside each
figure. ``--profile FILE`` records serve with py-spy during one extra back-to-back
run and prints the top of its own code. ``--before COMMIT`` (or a directory holding
``rollback_bot``) runs that version of the bot as a third side on the same stand-ins,
its own database, in the same alternation (A B C, C B A, ...): before/after in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ack_latency import (
    CATALOG,
    CHANNEL,
    FORM,
    USER,
    Request,
    Sample,
    percentile,
    run_load,
    served_process,
)
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.values import button_value
from sandbox.slack import SlackDriver, SlackStandIn, sign_request
from sandbox.stack import SIGNING_SECRET, LoopbackStack, wait_until

TARGET_RATIO = 0.7
TARGET_P99_MS = 20.0
BASELINE = "bare bolt"
SERVE = "rollback-bot serve"
BEFORE = "serve, before"  # --before: another version of the bot, same stand-ins


def run_load_async(
    url: str, batch: list[Request], concurrency: int, max_seconds: float, rate: float = 0.0
) -> tuple[list[Sample], float]:
    """Like ``ack_latency.run_load``, with asyncio and aiohttp: a client costs far less CPU.

    ``concurrency`` connections (kept alive) send back to back, or at ``rate`` per second
    with at most ``concurrency`` in flight; at a rate the clock starts when a request was
    due. Each request is signed just before it is sent, outside its timing.
    """
    return asyncio.run(_load(url, batch, concurrency, max_seconds, rate))


async def _load(
    url: str, batch: list[Request], concurrency: int, max_seconds: float, rate: float
) -> tuple[list[Sample], float]:
    import aiohttp

    samples: list[Sample] = []
    queue = list(reversed(batch))
    started = time.perf_counter()
    deadline = started + max_seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(offset: int) -> None:
            index = offset
            while queue and time.perf_counter() < deadline:
                request = queue.pop()
                due = None
                if rate > 0:
                    due = started + index / rate
                    index += concurrency
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                headers = {"Content-Type": FORM, **sign_request(SIGNING_SECRET, request.body)}
                began = time.perf_counter() if due is None else due
                async with session.post(url, data=request.body, headers=headers) as response:
                    await response.read()
                samples.append(Sample(request.kind, time.perf_counter() - began, response.status))

        await asyncio.gather(*(client(i) for i in range(concurrency)))
    return samples, time.perf_counter() - started


def load_average() -> float:
    return os.getloadavg()[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build(driver: SlackDriver, count: int) -> list[Request]:
    """``count`` help commands and ``count`` Approve clicks, interleaved, each its own trigger."""
    out = []
    for _ in range(count):
        help_ = driver.command_payload("help", user_id=USER, channel_id=CHANNEL)
        out.append(Request("command /rollback help", urlencode(help_).encode()))
        click = driver.click_payload(
            action_id=action_ids.APPROVE,
            value=button_value(rollback_id=999_999),
            user_id="U0BOB",
            channel_id=CHANNEL,
            message_ts="1700000000.000100",
        )
        out.append(Request("click Approve", urlencode({"payload": json.dumps(click)}).encode()))
    return out


@contextmanager
def baseline(workdir: Path) -> Iterator[tuple[str, int]]:
    out = workdir / "baseline.out"
    script = Path(__file__).resolve().parent / "bolt_baseline.py"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, str(script)], stdout=sink, stderr=subprocess.STDOUT
        )
    try:

        def listening() -> str | None:
            if process.poll() is not None:
                raise RuntimeError(f"the baseline exited:\n{out.read_text()}")
            lines = [s for s in out.read_text().splitlines() if "listening on" in s]
            return lines[0] if lines else None

        yield wait_until(listening, timeout=60, interval=0.05).split()[-1], process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Segment:
    side: str
    samples: list[Sample]
    elapsed: float
    cpu: float
    load: float
    drain: float = 0.0  # seconds after the last ack until the work behind the acks was done
    cpu_with_work: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.samples) / self.elapsed

    def ms(self, p: float) -> float:
        return percentile([s.seconds * 1000 for s in self.samples], p)


def segment(
    load: ProcessPoolExecutor,
    side: str,
    url: str,
    pid: int,
    batch: list[Request],
    args: argparse.Namespace,
    rate: float = 0.0,
    standin: SlackStandIn | None = None,
) -> Segment:
    """One run against one side; with ``standin``, also waits for the work behind the acks.

    Each Approve click is answered after its ack with an ephemeral message; the run's work
    is done when the stand-in has them all, so work left over does not spill into (and
    slow) the next run, and the CPU it cost is counted.
    """
    told = standin.count_calls("chat.postEphemeral") if standin else 0
    cpu = cpu_seconds(pid)
    send = run_load if args.threads else run_load_async
    future = load.submit(
        send, f"{url}/slack/events", batch, args.concurrency, args.max_seconds, rate
    )
    samples, elapsed = future.result()
    bad = [s for s in samples if s.status != 200]
    if bad:
        raise RuntimeError(f"{side}: {len(bad)} answers were not 200 (first: {bad[0].status})")
    seg = Segment(side, samples, elapsed, cpu_seconds(pid) - cpu, load_average())
    if standin is not None:
        clicks = sum(s.kind.startswith("click") for s in samples)
        ended = time.perf_counter()
        wait_until(
            lambda: standin.count_calls("chat.postEphemeral") >= told + clicks,
            timeout=120,
            interval=0.01,
        )
        seg.drain = time.perf_counter() - ended
        seg.cpu_with_work = cpu_seconds(pid) - cpu
    return seg


def line(seg: Segment) -> str:
    per = seg.cpu / len(seg.samples) * 1000
    top = max(s.seconds for s in seg.samples) * 1000
    return (
        f"  {seg.side:18} {len(seg.samples):>5} {seg.throughput:>7.0f}/s "
        f"{seg.ms(50):>6.1f} {seg.ms(90):>6.1f} {seg.ms(99):>6.1f} {top:>6.1f}"
        f"   {per:>5.2f} ms   {seg.load:>5.2f}"
        + (
            f"   +{seg.drain:.2f} s, {seg.cpu_with_work / len(seg.samples) * 1000:.2f} ms"
            if seg.cpu_with_work
            else ""
        )
    )


HEADER = (
    f"  {'':18} {'n':>5} {'req/s':>9} {'p50':>6} {'p90':>6} {'p99':>6} {'max':>6}   CPU/req   load"
)


def alternate(rounds: int, sides: list[str]) -> Iterator[tuple[int, str]]:
    """A B C, C B A, A B C, ...: a drift in machine load hits every side alike."""
    for r in range(rounds):
        for side in sides if r % 2 == 0 else list(reversed(sides)):
            yield r, side


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        stack = LoopbackStack(catalog=CATALOG, database_url=f"sqlite:///{workdir}/bench.db")
        stack.start(bot=False)  # the stand-ins only: the bot is the served process
        try:
            with ExitStack() as running:
                sides = {BASELINE: running.enter_context(baseline(workdir))}
                if args.before:
                    src = _before_src(args.before, workdir)
                    sides[BEFORE] = running.enter_context(
                        served_process(
                            stack,
                            workdir,
                            name="before",
                            database_url=f"sqlite:///{workdir}/before.db",
                            src=src,
                        )
                    )
                sides[SERVE] = running.enter_context(served_process(stack, workdir))
                driver = SlackDriver(
                    events_url=sides[SERVE][0], signing_secret=SIGNING_SECRET, standin=stack.slack
                )
                _run(args, sides, driver)
        finally:
            stack.stop()
    return 0


def _before_src(before: str, workdir: Path) -> Path:
    """A directory holding ``rollback_bot`` as is, or ``git archive <commit> src`` of a commit."""
    if Path(before, "rollback_bot").is_dir():
        return Path(before).resolve()
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "archive", before, "src"], cwd=root, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive, check=True)
    return workdir / "src"


def _run(args: argparse.Namespace, sides: dict[str, tuple[str, int]], driver: SlackDriver) -> None:
    print(
        f"acks, {SERVE} vs {BASELINE} + Flask + waitress: {os.cpu_count()} CPUs, "
        f"load average {load_average():.2f} at the start, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )

    def work(side: str) -> SlackStandIn | None:
        return None if side == BASELINE else driver.standin

    served_sides = [side for side in sides if side != BASELINE]
    if BEFORE in sides:
        print(f"{BEFORE}: rollback_bot from {args.before}")

    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as load:
        for side, (url, pid) in sides.items():
            segment(load, side, url, pid, build(driver, args.warmup), args, 0.0, work(side))
        print(f"\n{args.concurrency} clients back to back, {args.rounds} rounds alternating")
        print(HEADER)
        by_side: dict[str, list[Segment]] = {side: [] for side in sides}
        for _, side in alternate(args.rounds, list(sides)):
            url, pid = sides[side]
            batch = build(driver, args.requests)
            seg = segment(load, side, url, pid, batch, args, 0.0, work(side))
            by_side[side].append(seg)
            print(line(seg), flush=True)
        for served_side in served_sides if args.rounds else []:
            ratios = [
                s.throughput / b.throughput
                for s, b in zip(by_side[served_side], by_side[BASELINE], strict=True)
            ]
            ratio = statistics.median(ratios)
            verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
            print(
                f"throughput ratio {served_side} / bare bolt per round: "
                f"{', '.join(f'{r:.2f}' for r in ratios)}; median {ratio:.2f} "
                f"({verdict} the target >= {TARGET_RATIO})"
            )
        if args.rate > 0:
            print(
                f"\nat {args.rate:.0f} requests/s, up to {args.concurrency} in flight, "
                f"{args.rate_seconds:.0f} s each"
            )
            print(HEADER)
            count = int(args.rate * args.rate_seconds / 2)
            rated: dict[str, list[Segment]] = {side: [] for side in sides}
            for _, side in alternate(args.rate_rounds, list(sides)):
                url, pid = sides[side]
                batch = build(driver, count)
                seg = segment(load, side, url, pid, batch, args, args.rate, work(side))
                rated[side].append(seg)
                print(line(seg), flush=True)
            for side, segs in rated.items():
                merged = [s for seg in segs for s in seg.samples]
                ms = [s.seconds * 1000 for s in merged]
                p99 = percentile(ms, 99)
                note = ""
                if side != BASELINE:
                    note = " (" + ("meets" if p99 < TARGET_P99_MS else "MISSES")
                    note += f" the target < {TARGET_P99_MS:.0f} ms)"
                print(
                    f"  {side}, all rounds: p50 {percentile(ms, 50):.1f} ms, "
                    f"p90 {percentile(ms, 90):.1f} ms, p99 {p99:.1f} ms{note}"
                )
        if args.profile:
            _profile(load, sides[SERVE], driver, args)


def _profile(
    load: ProcessPoolExecutor,
    side: tuple[str, int],
    driver: SlackDriver,
    args: argparse.Namespace,
) -> None:
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy is not installed: no profile")
        return
    url, pid = side
    record = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--format", "raw", "--output", args.profile,
         "--rate", "200", "--gil", "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)
    seg = segment(load, SERVE, url, pid, build(driver, args.requests), args, 0.0, driver.standin)
    record.send_signal(2)
    record.wait(timeout=60)
    print(f"\nprofiled run (py-spy, 200 Hz, the thread holding the GIL)\n{HEADER}\n{line(seg)}")
    print(f"collapsed stacks in {args.profile}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=4, help="back-to-back runs per side")
    p.add_argument("--requests", type=int, default=750, help="per kind and run (two kinds)")
    p.add_argument("--warmup", type=int, default=100, help="unmeasured requests per kind first")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--max-seconds", type=float, default=60.0, help="stop sending after this")
    p.add_argument("--rate", type=float, default=100.0, help="paced runs at this rate; 0 skips")
    p.add_argument("--rate-seconds", type=float, default=10.0, help="length of a paced run")
    p.add_argument("--rate-rounds", type=int, default=2, help="paced runs per side")
    p.add_argument(
        "--threads",
        action="store_true",
        help="ack_latency's load generator (a thread per client, requests) instead of asyncio",
    )
    p.add_argument("--profile", help="record serve with py-spy to this file (collapsed stacks)")
    p.add_argument(
        "--before",
        help="also run this version of the bot, paired: a commit (git archive of its src) "
        "or a directory holding rollback_bot",
    )
    return p


if __name__ == "__main__":
    sys.exit(main())
