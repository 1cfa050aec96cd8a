"""`rollback-bot serve` with a 1,000-service catalog: start-up time and idle memory.

Run: ``python -m bench.serve_footprint [--services 1000] [--idle 5]``

Starts ``rollback-bot serve`` as its own process (environment only, ``PORT=0``)
on the loopback stand-ins (Kubernetes emulator, Slack stand-in, a migrated
SQLite database), twice, interleaved: with a 1-service catalog (the baseline,
same run) and with ``--services``. Prints the time from exec to the
"listening" line and the resident memory (VmRSS) after ``--idle`` seconds.
Targets with 1,000 services: start-up < 1.5 s, idle RSS < 110 MB.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.stack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, LoopbackStack, wait_until

REPO = Path(__file__).resolve().parents[1]


def catalog(services: int) -> dict[str, Any]:
    return {
        "services": [
            {
                "name": f"svc{i}",
                "namespace": "shop",
                "deployment": f"svc{i}",
                "environment": "staging",
                "channel": f"C{i % 50:04d}",
                "match": {"service": f"svc{i}"},
            }
            for i in range(services)
        ]
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve_once(
    stack: LoopbackStack, workdir: Path, services: int, idle: float
) -> tuple[float, float]:
    path = workdir / f"catalog-{services}.yaml"
    path.write_text(yaml.safe_dump(catalog(services)))
    env = {
        **os.environ,
        "SLACK_API_URL": stack.slack.url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "DATABASE_URL": stack.database_url,
        "ROLLBACK_BOT_CATALOG": str(path),
        "KUBECONFIG": stack.kube.write_kubeconfig(workdir / "kubeconfig"),
        "PORT": "0",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
    }
    out = workdir / "serve.out"
    with out.open("wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "rollback_bot.cli", "serve", "--host", "127.0.0.1"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"rollback-bot serve exited:\n{out.read_text()}")
            return "rollback-bot listening on" in out.read_text()

        wait_until(listening, timeout=120, interval=0.01)
        startup = time.perf_counter() - started
        time.sleep(idle)
        return startup, rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        stack = LoopbackStack(catalog=catalog(1), database_url=f"sqlite:///{tmp}/serve.db")
        stack.start(bot=False)
        try:
            results: dict[int, list[tuple[float, float]]] = {1: [], args.services: []}
            for _ in range(args.runs):
                for n in results:
                    results[n].append(serve_once(stack, workdir, n, args.idle))
        finally:
            stack.stop()
    print(f"load: {os.getloadavg()}")
    for n, runs in results.items():
        startup = min(s for s, _ in runs)
        rss = min(r for _, r in runs)
        print(
            f"{n:>5} service(s): start-up {startup:.2f} s (best of {len(runs)}), "
            f"idle RSS {rss:.1f} MB"
        )
    startup = min(s for s, _ in results[args.services])
    rss = min(r for _, r in results[args.services])
    print(
        f"targets with {args.services} services: start-up < 1.5 s "
        f"{'met' if startup < 1.5 else 'missed'}, "
        f"idle RSS < 110 MB {'met' if rss < 110 else 'missed'}"
    )


if __name__ == "__main__":
    main()
