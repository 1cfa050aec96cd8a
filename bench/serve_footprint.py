"""`rollback-bot serve` with a 1,000-service catalog: start-up time and idle memory.

Run: ``python -m bench.serve_footprint [--services 1000] [--idle 5] [--before SRC [--pairs N]]``

Starts ``rollback-bot serve`` as its own process (environment only, ``PORT=0``, run as
the console script runs it) on the loopback stand-ins (Kubernetes emulator, Slack
stand-in, a migrated SQLite database), twice, interleaved: with a 1-service catalog
(the baseline, same run) and with ``--services``. Prints the time from exec to the
"listening" line (read from a pipe as it is written), the process's CPU time read at
that line, and the resident memory (VmRSS) after ``--idle`` seconds.
Targets with 1,000 services: start-up < 1.5 s, idle RSS < 110 MB.

The bot's byte code is compiled first into a private cache
(``PYTHONPYCACHEPREFIX`` in the work directory), as the image does at build
time: a shell with ``PYTHONDONTWRITEBYTECODE=1`` would otherwise recompile
every module of the package at each start (about 0.7 s of CPU), which no
deployment pays. ``--cold`` measures that case instead.

``--before SRC`` runs a second copy of the bot (a ``src`` directory, e.g. from
``git archive <commit> src``) interleaved with this tree's, on the same
stand-ins in the same run, and prints both, so a before/after is paired;
``--pairs N`` then starts each N more times with ``--services``, back to back and
alternating which goes first, and prints the ratio of each pair.
"""

from __future__ import annotations

import argparse
import compileall
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.stack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, LoopbackStack

REPO = Path(__file__).resolve().parents[1]
#: What the `rollback-bot` console script runs.
CONSOLE_SCRIPT = "import sys; from rollback_bot.cli import main; sys.exit(main())"


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_once(
    stack: LoopbackStack,
    workdir: Path,
    services: int,
    idle: float,
    cold: bool = False,
    src: Path = REPO / "src",
) -> tuple[float, float, float]:
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
        "PYTHONPATH": os.pathsep.join([str(src), str(REPO)]),
    }
    if not cold:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    output: list[str] = []
    listening = threading.Event()
    started = time.perf_counter()
    # As the console script (`rollback-bot serve`, the image's entry point) runs it: the
    # CLI module from its cached byte code, not compiled afresh as `python -m` would.
    process = subprocess.Popen(
        [sys.executable, "-c", CONSOLE_SCRIPT, "serve", "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stamp: list[tuple[float, float]] = []

    def read() -> None:
        # The line is read from the pipe as it is written (no polling of a file), and the
        # CPU time is read at once: what the process does after the line (the channel
        # check, the scheduler's first jobs) is counted as little as possible.
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if not listening.is_set() and "rollback-bot listening on" in line:
                stamp.append((time.perf_counter() - started, cpu_seconds(process.pid)))
                listening.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not listening.wait(0.05):
            if process.poll() is not None or time.monotonic() > deadline:
                reader.join(5)
                raise RuntimeError(f"rollback-bot serve did not listen:\n{''.join(output)}")
        startup, cpu = stamp[0]
        time.sleep(idle)
        return startup, cpu, rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--before", type=Path, help="a src directory to run interleaved with this tree's"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="with --before: this many more starts of each with --services, back to back, "
        "alternating which goes first, no idle wait (the paired figure)",
    )
    parser.add_argument(
        "--cold", action="store_true", help="no byte-code cache: every module compiled at start"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        trees = {"after" if args.before else "this tree": REPO / "src"}
        if args.before:
            trees = {"before": args.before.resolve(), **trees}
        if not args.cold:
            sys.pycache_prefix = str(workdir / "pycache")
            for src in trees.values():
                compileall.compile_dir(src / "rollback_bot", quiet=1)
        stack = LoopbackStack(catalog=catalog(1), database_url=f"sqlite:///{tmp}/serve.db")
        stack.start(bot=False)
        try:
            # A discarded start fills the byte-code cache of the libraries too
            # (the prefix hides their installed __pycache__).
            for src in trees.values():
                serve_once(stack, workdir, 1, 0.0, args.cold, src)
            results: dict[tuple[str, int], list[tuple[float, float, float]]] = {
                (label, n): [] for n in (1, args.services) for label in trees
            }
            for _ in range(args.runs):
                for label, n in results:
                    results[label, n].append(
                        serve_once(stack, workdir, n, args.idle, args.cold, trees[label])
                    )
            back_to_back: list[dict[str, tuple[float, float, float]]] = []
            for i in range(args.pairs if args.before else 0):
                order = ("before", "after") if i % 2 == 0 else ("after", "before")
                n = args.services
                back_to_back.append(
                    {
                        label: serve_once(stack, workdir, n, 0.0, args.cold, trees[label])
                        for label in order
                    }
                )
        finally:
            stack.stop()
    print(f"load: {os.getloadavg()}; byte code {'not cached (--cold)' if args.cold else 'cached'}")
    for (label, n), runs in results.items():
        startup = min(s for s, _, _ in runs)
        cpu = min(c for _, c, _ in runs)
        rss = min(r for _, _, r in runs)
        print(
            f"{label:>9} {n:>5} service(s): start-up {startup:.2f} s wall, {cpu:.2f} s CPU "
            f"(best of {len(runs)}; median {statistics.median(s for s, _, _ in runs):.2f} s wall, "
            f"{statistics.median(c for _, c, _ in runs):.2f} s CPU; "
            f"wall of each run {', '.join(f'{s:.2f}' for s, _, _ in runs)}), "
            f"idle RSS {rss:.1f} MB"
        )
    if args.before:
        # Each round runs before and after back to back: the ratio within a round is the
        # figure the machine's load moves least.
        for n in (1, args.services):
            pairs = list(zip(results["after", n], results["before", n], strict=True))
            wall = [a[0] / b[0] for a, b in pairs]
            cpu = [a[1] / b[1] for a, b in pairs]
            print(
                f"after/before per round, {n} service(s): wall "
                f"{', '.join(f'{r:.2f}' for r in wall)} (median {statistics.median(wall):.2f}); "
                f"CPU {', '.join(f'{r:.2f}' for r in cpu)} (median {statistics.median(cpu):.2f})"
            )
    if back_to_back:
        wall = [pair["after"][0] / pair["before"][0] for pair in back_to_back]
        cpu = [pair["after"][1] / pair["before"][1] for pair in back_to_back]
        for label in ("before", "after"):
            print(
                f"{label:>9} {args.services:>5} service(s), {len(back_to_back)} pairs in a row: "
                f"median {statistics.median(pair[label][0] for pair in back_to_back):.2f} s wall, "
                f"{statistics.median(pair[label][1] for pair in back_to_back):.2f} s CPU"
            )
        print(
            f"after/before per pair: wall {', '.join(f'{r:.2f}' for r in wall)} "
            f"(median {statistics.median(wall):.2f}); CPU {', '.join(f'{r:.2f}' for r in cpu)} "
            f"(median {statistics.median(cpu):.2f}); load {os.getloadavg()}"
        )
    mine = results[list(trees)[-1], args.services]
    best = min(s for s, _, _ in mine)
    median = statistics.median(s for s, _, _ in mine)
    rss = min(r for _, _, r in mine)
    print(
        f"targets with {args.services} services: start-up < 1.5 s "
        f"{'met' if best < 1.5 else 'missed'} in the best run, "
        f"{'met' if median < 1.5 else 'missed'} in the median; "
        f"idle RSS < 110 MB {'met' if rss < 110 else 'missed'}"
    )


if __name__ == "__main__":
    main()
