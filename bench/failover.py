"""Failover time: the leader killed (SIGKILL) -> the next scheduled step run by the new leader.

Two ``rollback-bot serve`` replicas on PostgreSQL and the real control plane
(sandbox/realk8s), the harness of tests/ha. Gradual rollbacks step every
``STEP_SECONDS``; right after a step's write the leader is killed, and the time
until the next step's ``rollback.applying`` entry (written by the new leader) is
one sample. Median of ``--samples`` (5), with the lease settings printed.

    python bench/failover.py --database-url postgresql+psycopg://postgres@127.0.0.1/postgres

The bound to expect: lease duration (the follower must see the lease unrenewed
that long) + one retry period (its next round) + the step still due (at most
one step interval) + recovery.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from sandbox.realk8s import RealControlPlane  # noqa: E402
from sandbox.realk8s.binaries import default_bin_dir  # noqa: E402
from tests.ha.harness import GRADUAL, LEASE, STEP_SECONDS, Replicas  # noqa: E402

PAST_STEPS = ("paused", "verifying", "done", "failed", "aborted")


def _database(server_url: str) -> str:
    name = f"rbbench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL server URL")
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    duration, deadline, period = LEASE
    print(
        f"lease duration {duration:g} s, renew deadline {deadline:g} s, "
        f"retry period {period:g} s; step every {STEP_SECONDS:g} s",
        flush=True,
    )
    rounds = min(args.samples, len(GRADUAL))  # up to two kills per gradual rollback
    samples: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, RealControlPlane(bin_dir=default_bin_dir()) as cp:
        ha = Replicas(cp, _database(args.database_url), Path(tmp), gradual=rounds)
        try:
            ha.spawn()
            ha.spawn()
            for service in GRADUAL[:rounds]:
                if len(samples) >= args.samples:
                    break
                ha.release_gradual(service)
                rollback_id = ha.request(ha.follower(), service)
                for _ in range(2):
                    if len(samples) >= args.samples:
                        break
                    ha.ready()  # a spare that is still starting would be timed too
                    # Right after a step is recorded: the next one is due a step later.
                    seen = ha.kinds(rollback_id).count("rollback.step")
                    ha.wait_for(
                        lambda n=seen, r=rollback_id: (
                            ha.kinds(r).count("rollback.step") > n
                            or ha.rollback(r)["state"] in PAST_STEPS
                        )
                    )
                    if ha.rollback(rollback_id)["state"] in PAST_STEPS:
                        break  # it got past its steps while the spare started
                    applying = ha.kinds(rollback_id).count("rollback.applying")
                    kill = ha.kill_leader()
                    ha.wait_for(
                        lambda a=applying, r=rollback_id: (
                            ha.kinds(r).count("rollback.applying") > a
                            or ha.rollback(r)["state"] in PAST_STEPS
                        )
                    )
                    ats = [at for k, _, at in ha.events(rollback_id) if k == "rollback.applying"]
                    # Only a step begun after the kill is the new leader's.
                    ats = [at for at in ats[applying:] if at.timestamp() > kill.wall]
                    if not ats:
                        print(f"  {service}: no step begun after the kill; no sample")
                        ha.resume_if_paused(ha.follower(), rollback_id)
                        continue
                    seconds = ats[0].timestamp() - kill.wall
                    samples.append(seconds)
                    print(f"  {kill.victim} killed -> {kill.successor} ran the next step "
                          f"{seconds:.2f} s later", flush=True)  # fmt: skip
                ha.wait_over(rollback_id)
        finally:
            ha.stop()
    if not samples:
        print("no samples")
        return 1
    print(
        f"failover (leader killed -> next step by the new leader): median "
        f"{statistics.median(samples):.2f} s of {len(samples)} "
        f"(min {min(samples):.2f}, max {max(samples):.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
