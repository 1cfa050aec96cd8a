"""How long from "Approve" to the Deployment patched, beside ``kubectl rollout undo``.

The promise is that the bot is faster than a person with kubectl, not slower:
once the second person approves, the patch must reach the API server in less
time than it takes kubectl just to start, discover and patch. Both run against
the same loopback Kubernetes emulator, and both clocks stop at the same point:
the emulator's audit time of the stored PATCH of the Deployment (not kubectl's
process exit, which comes later). The bot's clock starts when the signed click
leaves the client (built and signed beforehand; then a new connection, as Slack's
delivery may open, the request and its ack over plain ``http.client``), kubectl's
when its process is started. Runs are paired, bot
then kubectl, each on its own Deployment rolled forward just before, so a drift
in machine load hits both alike; kubectl's discovery cache is warmed first.

    python -m bench.click_to_patch [--runs 9]

Prints each pair, the medians, the median of the per-pair ratios (target 0.3 or
less), and where the bot's time goes: click to ack, ack to its first Kubernetes
request, and its requests up to the PATCH (each with the emulator's time).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sqlite3
import statistics
import subprocess
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.ack_latency import served
from sandbox.slack import SlackDriver
from sandbox.stack import SIGNING_SECRET, LoopbackStack, deployment_manifest, wait_until

TARGET = 0.3
NS = "shop"
CHANNEL = "C0BENCH"
ALICE, BOB = "U0ALICE", "U0BOB"
CATALOG: dict[str, Any] = {
    "services": [
        {
            "name": "checkout",
            "namespace": NS,
            "deployment": "checkout",
            "environment": "production",
            "channel": CHANNEL,
            "match": {"service": "checkout"},
            "policy": {"requesters": {"users": [ALICE]}, "approvers": {"users": [BOB]}},
            "health": {"timeout_seconds": 30, "wait_seconds": 0},
        }
    ]
}


def _image(stack: LoopbackStack, name: str) -> str:
    dep = stack.kube.get("deployments", NS, name) or {}
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def _roll_forward(stack: LoopbackStack, name: str, version: int) -> tuple[str, str]:
    """A new healthy version; returns (previous image, new image)."""
    previous = _image(stack, name)
    image = f"registry.local/{name}:v{version}"
    stack.set_image(NS, name, image)
    stack.wait_available(NS, name, timeout=30)
    return previous, image


def _approval_button(stack: LoopbackStack, rollback_id: int) -> tuple[str, str]:
    from rollback_bot.slack.ui import action_ids
    from rollback_bot.slack.ui.values import read_button_value

    def find() -> tuple[str, str] | None:
        for message in reversed(stack.slack.messages(CHANNEL)):
            for block in message.get("blocks") or []:
                for element in block.get("elements", []) if block.get("type") == "actions" else []:
                    if element.get("action_id") != action_ids.APPROVE:
                        continue
                    ids = read_button_value(element["value"])
                    if int(ids.get("rollback_id", 0)) == rollback_id:
                        return message["ts"], element["value"]
        return None

    return wait_until(find, timeout=30)


def _latest_rollback(database: Path) -> int:
    with closing(sqlite3.connect(database)) as db:
        return int(db.execute("SELECT coalesce(max(id), 0) FROM rollbacks").fetchone()[0])


def _state(database: Path, rollback_id: int) -> str:
    with closing(sqlite3.connect(database)) as db:
        row = db.execute("SELECT state FROM rollbacks WHERE id = ?", (rollback_id,)).fetchone()
    return str(row[0]) if row else "?"


def _request(stack: LoopbackStack, driver: SlackDriver, database: Path, to: str) -> int:
    from rollback_bot.slack.ui import action_ids

    seen = len(stack.slack.views)
    # To the previous image by tag: no revision is known stable on a fresh emulator.
    driver.command(f"checkout --to {to}", user_id=ALICE, channel_id=CHANNEL)
    update = wait_until(
        lambda: next((v for v in stack.slack.views[seen:] if v["op"] == "update"), None),
        timeout=30,
    )
    before = _latest_rollback(database)
    driver.submit_view(
        callback_id=action_ids.REQUEST_MODAL,
        user_id=ALICE,
        private_metadata=update["view"]["private_metadata"],
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "bench"}},
    )
    return int(wait_until(lambda: (n := _latest_rollback(database)) > before and n, timeout=30))


@dataclass
class Hit:
    """One request the emulator answered: when it arrived and ended (wall clock), and what."""

    began: float
    ended: float
    method: str
    path: str
    agent: str


def record_requests(stack: LoopbackStack) -> list[Hit]:
    """Every API request the emulator handles from now on, in order."""
    hits: list[Hit] = []
    handle = stack.kube.api.handle

    def recorded(req: Any) -> Any:
        began = time.time()
        try:
            return handle(req)
        finally:
            agent = req.headers.get("User-Agent", "")
            hits.append(Hit(began, time.time(), req.method, req.path, agent))

    stack.kube.api.handle = recorded  # type: ignore[method-assign]
    return hits


def stored_patch(stack: LoopbackStack, name: str, after: float) -> float:
    """Wall time at which the emulator stored the first PATCH of ``name`` after ``after``."""

    def find() -> float | None:
        for entry in stack.kube.audit:
            if (
                entry["verb"] == "patch"
                and entry["resource"] == "deployments"
                and entry["name"] == name
                and not entry.get("subresource")
                and not entry.get("dryRun")
            ):
                at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00")).timestamp()
                if at > after:
                    return at
        return None

    # Woken by the emulator's store changes, not by polling: the bot shares this process's
    # interpreter lock, so a busy wait here would slow the side being measured.
    found: list[float] = []

    def stored() -> bool:
        at = find()
        if at is not None:
            found.append(at)
        return at is not None

    stack.kube.wait_for(stored, timeout=30)
    return found[-1]


@dataclass
class BotRun:
    total: float  # click sent -> PATCH stored
    ack: float  # click sent -> acknowledgement received
    to_first: float  # acknowledgement -> first Kubernetes request arrives
    requests: list[Hit]  # the bot's requests up to and including the PATCH
    start: float  # wall time the click was sent


def bot_run(
    stack: LoopbackStack, driver: SlackDriver, database: Path, hits: list[Hit], run: int
) -> BotRun:
    from rollback_bot.slack.ui import action_ids

    previous, _ = _roll_forward(stack, "checkout", run + 1)
    rollback_id = _request(stack, driver, database, previous.rsplit(":", 1)[1])
    ts, value = _approval_button(stack, rollback_id)
    body, headers = driver.signed_click(
        action_id=action_ids.APPROVE, value=value, user_id=BOB, channel_id=CHANNEL, message_ts=ts
    )
    url = urlsplit(driver.events_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    seen = len(hits)
    start = time.time()  # the signed click leaves the client: connect, send, read the ack
    connection.request("POST", url.path, body=body, headers=headers)
    answer = connection.getresponse()
    answer.read()
    acked = time.time()
    connection.close()
    assert answer.status == 200, answer.status
    stored = stored_patch(stack, "checkout", start)
    mine = [h for h in hits[seen:] if h.began >= start and h.began <= stored]
    wait_until(lambda: _state(database, rollback_id) == "done", timeout=60)
    assert _image(stack, "checkout") == previous
    first = mine[0].began if mine else stored
    return BotRun(stored - start, acked - start, max(0.0, first - acked), mine, start)


def kubectl_run(stack: LoopbackStack, workdir: Path, kubeconfig: str, run: int) -> float:
    previous, _ = _roll_forward(stack, "manual", run + 1)
    command = [
        "kubectl", "--kubeconfig", kubeconfig, "--cache-dir", str(workdir / "cache"),
        "-n", NS, "rollout", "undo", "deployment/manual",
    ]  # fmt: skip
    start = time.time()
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    stored = stored_patch(stack, "manual", start)
    assert _image(stack, "manual") == previous
    stack.wait_available(NS, "manual", timeout=30)
    return stored - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="pairs of runs (bot, kubectl)")
    args = parser.parse_args(argv)
    print(
        f"click -> PATCH stored, bot vs kubectl {_kubectl_version()}: {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        database = workdir / "bench.db"
        stack = LoopbackStack(
            catalog=CATALOG, database_url=f"sqlite:///{database}", ready_delay=0.02
        )
        stack.start(bot=False)  # the stand-ins only: the bot is its own process, as deployed
        try:
            with served(stack, workdir, CATALOG) as url:
                driver = SlackDriver(
                    events_url=f"{url}/slack/events",
                    signing_secret=SIGNING_SECRET,
                    standin=stack.slack,
                )
                bots, manual = _pairs(stack, driver, database, workdir, args.runs)
        finally:
            stack.stop()
    _report(bots, manual)
    return 0


def _pairs(
    stack: LoopbackStack, driver: SlackDriver, database: Path, workdir: Path, runs: int
) -> tuple[list[BotRun], list[float]]:
    kubeconfig = stack.kube.write_kubeconfig(workdir / "kubeconfig")
    for name in ("checkout", "manual"):
        stack.deploy(NS, deployment_manifest(name, f"registry.local/{name}:v0"))
        stack.wait_available(NS, name, timeout=30)
    kubectl_run(stack, workdir, kubeconfig, 100)  # warm kubectl's discovery cache
    hits = record_requests(stack)
    # The first rollback after start-up fills caches (connections, lazily built clients):
    # shown, then left out of the pairs, as kubectl's discovery cache was warmed above.
    first = bot_run(stack, driver, database, hits, runs)
    print(f"first rollback after start-up (not paired): {first.total * 1000:.1f} ms")
    bots: list[BotRun] = []
    manual: list[float] = []
    print(f"{'pair':>4} {'bot':>8} {'kubectl':>8} {'ratio':>6}   load")
    for run in range(runs):
        bots.append(bot_run(stack, driver, database, hits, run))
        manual.append(kubectl_run(stack, workdir, kubeconfig, run))
        print(
            f"{run + 1:>4} {bots[-1].total * 1000:>6.1f}ms {manual[-1] * 1000:>6.1f}ms "
            f"{bots[-1].total / manual[-1]:>6.2f}   {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    return bots, manual


def _report(bots: list[BotRun], manual: list[float]) -> None:
    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.1f} ms"

    ratios = [b.total / m for b, m in zip(bots, manual, strict=True)]
    ratio = statistics.median(ratios)
    print(f"\nbot: approval click -> Deployment PATCH stored, median {ms([b.total for b in bots])}")
    print(f"kubectl rollout undo: process start -> PATCH stored, median {ms(manual)}")
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(
        f"ratio bot / kubectl, median of the {len(ratios)} pairs: {ratio:.2f} "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}; {verdict} the target <= {TARGET})"
    )
    last = [b.requests[-1].ended - b.requests[0].began for b in bots if b.requests]
    print(
        f"bot, where the time goes (medians): click -> ack {ms([b.ack for b in bots])}, "
        f"ack -> first Kubernetes request {ms([b.to_first for b in bots])}, "
        f"first request -> PATCH stored {ms(last)}"
    )
    counts = [len(b.requests) for b in bots]
    print(f"bot's Kubernetes requests up to the PATCH: {min(counts)}-{max(counts)}; the last run:")
    last_run = bots[-1]
    print(f"  (ms after the click; the ack came at {last_run.ack * 1000:.1f})")
    for hit in last_run.requests:
        offset = (hit.began - last_run.start) * 1000
        took = (hit.ended - hit.began) * 1000
        print(f"  {offset:6.1f}  {hit.method:6} {hit.path}  {took:.1f} ms in the emulator")


def _kubectl_version() -> str:
    try:
        out = subprocess.run(
            ["kubectl", "version", "--client", "-o", "json"], capture_output=True, timeout=30
        )
        return str(json.loads(out.stdout)["clientVersion"]["gitVersion"])
    except (OSError, ValueError, KeyError):
        return "(version unknown)"


if __name__ == "__main__":
    raise SystemExit(main())
