"""Failover: two ``serve`` replicas on PostgreSQL and the real control plane; the leader is
killed with SIGKILL five times, at different moments of a gradual rollback and of an
automatic countdown, and the other replica carries on.

Every run ends consistent (done, or paused and saying so in its timeline), no canary
step is written twice (the API server's audit log), every step written is in the
timeline, and the countdown never fires before it was visible for its whole length
since it was last (re)started. Requests and alerts go to the follower: any replica
answers, only the leader runs jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sandbox.realk8s import RealControlPlane
from tests.ha.harness import COUNTDOWN_SECONDS, Replicas


@pytest.fixture
def replicas(
    real_control_plane: RealControlPlane, database_url: str, tmp_path: Path
) -> Iterator[Replicas]:
    if database_url.startswith("sqlite"):
        pytest.skip(
            "replicas share a PostgreSQL database (ROLLBACK_BOT_TEST_DATABASE_URL): "
            "this runs in CI's PostgreSQL pass"
        )
    ha = Replicas(real_control_plane, database_url, tmp_path)
    try:
        ha.spawn()
        ha.spawn()
        yield ha
    finally:
        ha.stop()


def _only_one_leader(ha: Replicas) -> None:
    leaders = [r.name for r in ha.live() if r.leading()]
    assert len(leaders) == 1, leaders


def _gradual_is_consistent(ha: Replicas, rollback_id: int, pauses: int) -> None:
    events = ha.events(rollback_id)
    kinds = [k for k, _, _ in events]
    writes = ha.canary_writes()
    # 5 canary replicas at 50%, then 2, 1, 0: each written exactly once, in order.
    assert writes == [2, 1, 0], writes
    assert kinds[0] == "rollback.requested", kinds
    assert "rollback.executing" in kinds, kinds
    assert kinds[-1] == "rollback.done", kinds
    # Paused and said so, each time a kill cut a step off; resumed by a person.
    paused = [s for k, s, _ in events if k == "rollback.paused"]
    assert len(paused) == pauses, paused
    assert all("restarted while step" in s for s in paused), paused
    # Every write is in the timeline, but a step cut off by a kill: written, not recorded,
    # and (resume re-reads the cluster) never written again.
    recorded = [s for k, s, _ in events if k == "kube.changed" and "shopfront-canary" in s]
    assert len(writes) - pauses <= len(recorded) <= len(writes), (recorded, writes)


def _carry_on(ha: Replicas, rollback_id: int, progressed: Callable[[], bool]) -> int:
    """After a kill: wait until the new leader moved the rollback on, or paused it."""
    ha.wait_for(lambda: progressed() or ha.rollback(rollback_id)["state"] in ("paused", "done"))
    return 1 if ha.resume_if_paused(ha.follower(), rollback_id) else 0


def test_the_follower_takes_over_at_five_moments_and_every_run_ends_consistent(
    replicas: Replicas,
) -> None:
    ha = replicas
    _only_one_leader(ha)
    ha.release_gradual()
    ha.release_instant()

    # 1-3: a gradual rollback, killed right after it began, after its first write, and
    # during a later health gate. Each kill: a new replica joins, so two are left.
    first = ha.request(ha.follower(), "shopfront")
    pauses = 0
    ha.wait_kind(first, "rollback.executing")
    ha.kill_leader()
    pauses += _carry_on(ha, first, lambda: len(ha.canary_writes()) >= 1)
    ha.wait_for(lambda: len(ha.canary_writes()) >= 1)
    ha.kill_leader()
    pauses += _carry_on(ha, first, lambda: len(ha.canary_writes()) >= 2)
    ha.kill_leader()
    while ha.wait_over(first) == "paused":
        pauses += _carry_on(ha, first, lambda: False)
    assert ha.wait_over(first) == "done", ha.kinds(first)
    _gradual_is_consistent(ha, first, pauses)

    # 4-5: an automatic countdown (from an alert sent to the follower), killed while it
    # counts, and again while it counts after the new leader restarted it.
    assert ha.alert(ha.follower(), "search").status_code == 200
    auto = ha.wait_for(lambda: (rid := ha.latest_rollback_id()) and rid != first and rid)
    ha.wait_kind(auto, "countdown.started")
    ha.kill_leader()
    ha.ready()  # the spare joins (it may take a while on a loaded machine)
    ha.wait_kind(auto, "countdown.started", 2)  # the new leader restarts it, whole length
    counting = ha.rollback(auto)["state"] == "scheduled"
    ha.kill_leader()
    # On a loaded machine the countdown may have run out before this kill, which then cuts
    # the rollback's step off: paused and saying so, like the gradual one, and resumed.
    while ha.wait_over(auto) == "paused":
        _carry_on(ha, auto, lambda: False)
    assert ha.wait_over(auto) == "done", ha.kinds(auto)
    events = ha.events(auto)
    kinds = [k for k, _, _ in events]
    paused = [s for k, s, _ in events if k == "rollback.paused"]
    assert all("restarted while step" in s for s in paused), paused
    # Started first, then again by each new leader that found it still counting.
    assert kinds.count("countdown.started") == (3 if counting else 2), kinds
    assert kinds.count("countdown.elapsed") == 1, kinds
    elapsed = next(at for k, _, at in events if k == "countdown.elapsed")
    last_start = [at for k, _, at in events if k == "countdown.started" and at < elapsed][-1]
    assert elapsed - last_start >= timedelta(seconds=COUNTDOWN_SECONDS), (last_start, elapsed)
    assert kinds[-1] == "rollback.done", kinds

    assert len(ha.kills) == 5
    assert all(k.victim != k.successor for k in ha.kills)
    _only_one_leader(ha)
