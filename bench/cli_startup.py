"""How long a CLI command takes from exec to exit: `rollback-bot incidents` on an empty database.

Run: ``python -m bench.cli_startup [--runs 9]``

Prints the median wall and CPU time of ``python -m rollback_bot.cli incidents``
(a migrated, empty SQLite database) beside the same interpreter doing nothing
(``python -c pass``, the floor no change here can go below), measured in the
same run and interleaved, then the slowest imports by ``-X importtime``.
Target: < 0.4 s wall. The processes read compiled bytecode of our modules, as an
installed package does (``bench/_bytecode.py``; ``--no-bytecode``: compiled from source in
every process, as a checkout with ``PYTHONDONTWRITEBYTECODE=1`` is).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._bytecode import child_env, describe  # noqa: E402

TARGET_S = 0.4


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def importtime(argv: list[str], env: dict[str, str], top: int = 8) -> list[str]:
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if cumulative.strip().isdigit() and not name.startswith("   "):
            rows.append((int(cumulative), name.strip()))
    rows.sort(reverse=True)
    return [f"  {us / 1000:7.1f} ms  {name}" for us, name in rows[:top]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--no-bytecode", action="store_true", help="compile in every process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = None if args.no_bytecode else Path(tmp) / "pycache"
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp}/cli.db",
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        }
        env = child_env(env, cache)
        print(describe(cache))
        command = [sys.executable, "-m", "rollback_bot.cli", "incidents"]
        subprocess.run(
            [sys.executable, "-m", "rollback_bot.cli", "migrate"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        floor = [sys.executable, "-c", "pass"]
        ours, bare = [], []
        for _ in range(args.runs):  # interleaved, so load changes hit both alike
            ours.append(timed(command, env))
            bare.append(timed(floor, env))
        print(f"load: {os.getloadavg()}")
        for name, runs in (("rollback-bot incidents", ours), ("python -c pass", bare)):
            wall = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            print(f"{name:<24} median wall {wall * 1000:6.0f} ms, cpu {cpu * 1000:6.0f} ms")
        wall = statistics.median(w for w, _ in ours)
        print(f"target < {TARGET_S:.1f} s wall: {'met' if wall < TARGET_S else 'missed'}")
        print("slowest top-level imports (-X importtime, cumulative):")
        for line in importtime(command, env):
            print(line)


if __name__ == "__main__":
    main()
