"""How fast the bot acknowledges Slack: p50/p90/p99/max and requests/s at 50 concurrent clients.

Slack gives an app 3 seconds to acknowledge a slash command or a click and
retries (or shows an error) otherwise, so the acknowledgement is the one
latency users feel under load. The bot under test is the loopback stack (the
real composition root behind waitress, real HTTP, signed requests). The load
comes from a separate process, so client threads do not compete with the
server for the interpreter lock and the figures are the server's.

    python bench/ack_latency.py [--requests 1000] [--concurrency 50] [--rate 100]
                                [--max-seconds 60] [--database-url URL] [--skip-serve]

Two runs: the clients send back to back (the server's saturation: latency is
then concurrency / throughput), and at a fixed arrival rate with up to
``--concurrency`` requests in flight (the latency a burst of users sees).

The last section starts ``rollback-bot serve`` as a real process and times
signed ``/rollback help`` commands against it, the first one included.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.values import button_value
from sandbox.slack import SlackDriver, sign_request
from sandbox.stack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    LoopbackStack,
    wait_until,
)

TARGET_P99_MS = 50.0
SLACK_DEADLINE_S = 3.0
CHANNEL = "C0BENCH"
USER = "U0ALICE"
FORM = "application/x-www-form-urlencoded"
CATALOG: dict[str, Any] = {
    "services": [
        {
            "name": "checkout",
            "namespace": "shop",
            "deployment": "checkout",
            "environment": "production",
            "channel": CHANNEL,
            "match": {"service": "checkout"},
            "policy": {"requesters": {"users": [USER]}, "approvers": {"users": ["U0BOB"]}},
        }
    ]
}


@dataclass(frozen=True)
class Request:
    kind: str
    body: bytes


@dataclass(frozen=True)
class Sample:
    kind: str
    seconds: float
    status: int


# -- requests, built and signed before the clock starts -----------------------------------


def _command(driver: SlackDriver, text: str) -> bytes:
    return urlencode(driver.command_payload(text, user_id=USER, channel_id=CHANNEL)).encode()


def _click(driver: SlackDriver) -> bytes:
    # Approve of a rollback that does not exist: acknowledged, then answered ephemerally.
    payload = driver.click_payload(
        action_id=action_ids.APPROVE,
        value=button_value(rollback_id=999_999),
        user_id="U0BOB",
        channel_id=CHANNEL,
        message_ts="1700000000.000100",
    )
    return urlencode({"payload": json.dumps(payload)}).encode()


def build_requests(driver: SlackDriver, count: int) -> list[Request]:
    """``count`` requests per kind, interleaved; every one has its own trigger_id."""
    makers = {
        "command /rollback help": lambda: _command(driver, "help"),
        "command /rollback status": lambda: _command(driver, "status"),
        "click Approve": lambda: _click(driver),
    }
    return [Request(kind, make()) for _ in range(count) for kind, make in makers.items()]


# -- the load, in its own process -----------------------------------------------------------


_local = threading.local()


def _send(url: str, request: Request, due: float | None) -> Sample:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    headers = {"Content-Type": FORM, **sign_request(SIGNING_SECRET, request.body)}
    # At a fixed rate the clock starts when the request was due, not when a client got
    # to it, so a backlog on our side shows up as latency instead of hiding.
    started = time.perf_counter() if due is None else due
    response = session.post(url, data=request.body, headers=headers, timeout=30)
    return Sample(request.kind, time.perf_counter() - started, response.status_code)


def run_load(
    url: str, batch: list[Request], concurrency: int, max_seconds: float, rate: float = 0.0
) -> tuple[list[Sample], float]:
    """Send ``batch`` with ``concurrency`` clients, back to back or at ``rate`` per second.

    Stops submitting after ``max_seconds``.
    """
    deadline = time.monotonic() + max_seconds
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = []
        for index, request in enumerate(batch):
            if time.monotonic() > deadline:
                break
            due = None
            if rate > 0:
                due = started + index / rate
                time.sleep(max(0.0, due - time.perf_counter()))
            futures.append(pool.submit(_send, url, request, due))
            # Keep at most a few requests queued per client, so the deadline holds.
            while sum(not f.done() for f in futures[-4 * concurrency :]) >= 4 * concurrency:
                time.sleep(0.001)
        samples = [f.result() for f in futures]
    return samples, time.perf_counter() - started


# -- reporting ------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def report(samples: list[Sample], elapsed: float) -> float:
    """Print one line per kind and one for all; return the overall p99 in ms."""
    kinds = sorted({s.kind for s in samples})
    print(f"{'':28} {'n':>6} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}  non-200")
    for kind in [*kinds, "all"]:
        chosen = [s for s in samples if kind in ("all", s.kind)]
        ms = [s.seconds * 1000 for s in chosen]
        bad = sum(s.status != 200 for s in chosen)
        print(
            f"{kind:28} {len(ms):>6} {percentile(ms, 50):>6.1f}ms {percentile(ms, 90):>6.1f}ms "
            f"{percentile(ms, 99):>6.1f}ms {max(ms):>6.1f}ms  {bad}"
        )
    print(f"throughput: {len(samples) / elapsed:.0f} requests/s over {elapsed:.1f} s")
    return percentile([s.seconds * 1000 for s in samples], 99)


# -- rollback-bot serve as a process --------------------------------------------------------


@contextmanager
def served(
    stack: LoopbackStack, workdir: Path, catalog_data: dict[str, Any] | None = None
) -> Iterator[str]:
    """``rollback-bot serve`` as its own process on the stack's stand-ins; yields its URL."""
    with served_process(stack, workdir, catalog_data=catalog_data) as (url, _):
        yield url


@contextmanager
def served_process(
    stack: LoopbackStack,
    workdir: Path,
    *,
    name: str = "serve",
    database_url: str | None = None,
    src: Path | None = None,
    catalog_data: dict[str, Any] | None = None,
) -> Iterator[tuple[str, int]]:
    """Like ``served``, yielding the URL and the pid; ``src`` first on its PYTHONPATH.

    ``src`` (a ``git archive <commit> src`` unpacked) runs another version of the bot on
    the same stand-ins, for before/after figures in one run; ``database_url`` its own.
    """
    catalog = workdir / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(CATALOG if catalog_data is None else catalog_data))
    env = {
        **os.environ,
        "SLACK_API_URL": stack.slack.url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "DATABASE_URL": database_url or stack.database_url,
        "ROLLBACK_BOT_CATALOG": str(catalog),
        "KUBECONFIG": stack.kube.write_kubeconfig(workdir / "kubeconfig"),
        "PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    out = workdir / f"{name}.out"
    if database_url is not None:  # its own database, fresh: migrated by that version
        command = [sys.executable, "-m", "rollback_bot.cli", "migrate"]
        subprocess.run(command, env=env, check=True, capture_output=True)
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "rollback_bot.cli", "serve", "--host", "127.0.0.1"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        line = wait_until(lambda: _listening(out, process), timeout=60, interval=0.05)
        yield line.split()[-1], process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def time_serve(stack: LoopbackStack, url: str, count: int = 20) -> list[float]:
    """Time ``count`` signed commands, one after another, against a served bot."""
    driver = SlackDriver(
        events_url=f"{url}/slack/events", signing_secret=SIGNING_SECRET, standin=stack.slack
    )
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        response = driver.command("help", user_id=USER, channel_id=CHANNEL)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return timings


def _listening(out: Path, process: subprocess.Popen[bytes]) -> str | None:
    if process.poll() is not None:
        raise RuntimeError(f"rollback-bot serve exited:\n{out.read_text()}")
    for line in out.read_text().splitlines():
        if "rollback-bot listening on" in line:
            return line
    return None


# -- main -----------------------------------------------------------------------------------


@contextmanager
def loopback(database_url: str | None) -> Iterator[LoopbackStack]:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.db"
        with LoopbackStack(catalog=CATALOG, database_url=url) as stack:
            yield stack


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Waitress warns on every queued request under load; the figures say it better.
    logging.basicConfig(level=logging.ERROR)
    with loopback(args.database_url) as stack, tempfile.TemporaryDirectory() as tmp:
        where = "in process with the stand-ins"
        target: AbstractContextManager[str] = nullcontext(stack.url)
        if args.served:
            where = "as its own process (rollback-bot serve)"
            target = served(stack, Path(tmp))
        with target as base:
            events = f"{base}/slack/events"
            print(
                f"ack latency: {args.requests} requests per kind and run, {os.cpu_count()} CPUs, "
                f"database {stack.database_url.split(':', 1)[0]}, bot {where}"
            )
            _load_runs(args, stack.driver, events)
            if not args.skip_serve:
                with nullcontext(base) if args.served else served(stack, Path(tmp)) as url:
                    timings = time_serve(stack, url)
                first, rest = timings[0] * 1000, [t * 1000 for t in timings[1:]]
                print(
                    f"rollback-bot serve: first signed /rollback help {first:.1f} ms, "
                    f"then median {statistics.median(rest):.1f} ms, max {max(rest):.1f} ms "
                    f"(Slack's limit {SLACK_DEADLINE_S:.0f} s)"
                )
    return 0


def _load_runs(args: argparse.Namespace, driver: SlackDriver, events: str) -> None:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as load:
        warmup = build_requests(driver, args.warmup)
        load.submit(run_load, events, warmup, args.concurrency, args.max_seconds).result()
        runs = [("back to back (saturation)", 0.0)]
        if args.rate > 0:
            runs.append((f"at {args.rate:.0f} requests/s", args.rate))
        for title, rate in runs:
            batch = build_requests(driver, args.requests)
            future = load.submit(run_load, events, batch, args.concurrency, args.max_seconds, rate)
            print(f"\n{args.concurrency} clients, {title}")
            p99 = report(*future.result())
            verdict = "meets" if p99 < TARGET_P99_MS else "MISSES"
            print(f"p99 {p99:.1f} ms {verdict} the {TARGET_P99_MS:.0f} ms target")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=1000, help="measured requests per kind")
    p.add_argument("--warmup", type=int, default=100, help="unmeasured requests per kind first")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--max-seconds", type=float, default=60.0, help="stop sending after this")
    p.add_argument("--rate", type=float, default=100.0, help="second run at this rate; 0 skips it")
    p.add_argument("--database-url", help="default: a fresh SQLite file")
    p.add_argument("--skip-serve", action="store_true", help="skip the rollback-bot serve check")
    p.add_argument(
        "--served",
        action="store_true",
        help="load a `rollback-bot serve` process instead of the in-process bot",
    )
    return p


if __name__ == "__main__":
    sys.exit(main())
