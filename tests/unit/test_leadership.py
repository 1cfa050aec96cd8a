"""Only the leader runs jobs: a follower stores them, the leader's poll finds them, and a
leader that loses the lease pauses before anything else."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import Engine

from rollback_bot.clock import SystemClock
from rollback_bot.leadership import ScheduledWork
from rollback_bot.rollbacks.runner.jobs import JobKind
from rollback_bot.rollbacks.runner.scheduling import JobScheduler
from sandbox.stack import wait_until


class Ran:
    def __init__(self) -> None:
        self.jobs: list[tuple[int, JobKind]] = []
        self._lock = threading.Lock()

    def __call__(self, rollback_id: int, kind: JobKind) -> None:
        with self._lock:
            self.jobs.append((rollback_id, kind))


@pytest.fixture
def replicas(engine: Engine) -> Iterator[tuple[JobScheduler, JobScheduler, Ran, Ran]]:
    ran_a, ran_b = Ran(), Ran()
    a = JobScheduler(engine=engine, clock=SystemClock(), dispatch=ran_a)
    b = JobScheduler(engine=engine, clock=SystemClock(), dispatch=ran_b)
    a.start_paused()
    b.start_paused()
    yield a, b, ran_a, ran_b
    a.stop()
    b.stop()


def test_a_job_stored_by_a_follower_runs_on_the_leader_and_only_there(
    replicas: tuple[JobScheduler, JobScheduler, Ran, Ran],
) -> None:
    follower, leader, ran_follower, ran_leader = replicas
    lags: list[float] = []
    leader.on_lag = lags.append
    leader.resume_polling(0.1)
    follower.after(1, JobKind.STEP)  # a click answered by the follower
    wait_until(lambda: ran_leader.jobs == [(1, JobKind.STEP)], timeout=20)
    assert ran_follower.jobs == []
    wait_until(lambda: lags, timeout=20)  # reported as the job is handed to a worker
    assert len(lags) == 1 and lags[0] >= 0
    assert follower.pending(1) == frozenset()  # the store forgot it: it ran once


def test_losing_the_lease_pauses_the_scheduler_and_leaves_the_jobs_stored(
    replicas: tuple[JobScheduler, JobScheduler, Ran, Ran],
) -> None:
    follower, leader, _, ran_leader = replicas
    leader.resume_polling(0.1)
    leader.pause()
    assert leader.scheduler.state == STATE_PAUSED
    follower.after(2, JobKind.GATE)
    assert leader.pending(2) == frozenset({JobKind.GATE})  # waiting for the next leader
    follower.resume_polling(0.1)  # the other replica takes over
    assert follower.scheduler.state == STATE_RUNNING
    wait_until(lambda: leader.pending(2) == frozenset(), timeout=20)
    assert ran_leader.jobs == []


class FakeRunner:
    def __init__(self, said: list[str]) -> None:
        self.said = said

    def start_following(self) -> None:
        self.said.append("runner follows")

    def lead(self, *, poll_seconds: float = 0.5) -> None:
        self.said.append("runner leads")

    def follow(self) -> None:
        self.said.append("runner paused")


class Loop:
    def __init__(self, name: str, said: list[str]) -> None:
        self.name, self.said = name, said

    def start(self) -> None:
        self.said.append(f"{self.name} started")

    def stop(self) -> None:
        self.said.append(f"{self.name} stopped")


def test_scheduled_work_pauses_the_runner_first_and_shows_the_gauge() -> None:
    said: list[str] = []
    gauge = Gauge("leader", "x", registry=CollectorRegistry())
    work = ScheduledWork(
        runner=FakeRunner(said),
        loops=[Loop("poller", said), Loop("watcher", said)],
        leader_gauge=gauge,
    )
    work.start_following()
    assert gauge._value.get() == 0
    work.lead()
    work.lead()  # a renewal is not a second start
    assert gauge._value.get() == 1
    work.follow()
    assert gauge._value.get() == 0
    assert said == [
        "runner follows",
        "runner leads",
        "poller started",
        "watcher started",
        "runner paused",
        "watcher stopped",
        "poller stopped",
    ]


def test_serve_refuses_lease_settings_out_of_order_in_one_line() -> None:
    from rollback_bot.config import Settings
    from rollback_bot.startup import settings_problems

    settings = Settings(
        slack_bot_token="xoxb-1",
        slack_signing_secret="s",
        leader_election=True,
        leader_election_lease_duration=10,
        leader_election_renew_deadline=10,
        kubeconfig=None,
    )
    problems = [p for p in settings_problems(settings, socket_mode=False) if "LEADER" in p]
    assert problems == [
        "LEADER_ELECTION_LEASE_DURATION and the others: leader election needs "
        "LEADER_ELECTION_LEASE_DURATION > LEADER_ELECTION_RENEW_DEADLINE > "
        "LEADER_ELECTION_RETRY_PERIOD > 0 (got 10 / 10 / 2 s)"
    ]


def test_work_due_now_starts_at_once_on_the_leader_and_is_stored_on_a_follower(
    replicas: tuple[JobScheduler, JobScheduler, Ran, Ran],
) -> None:
    follower, leader, ran_follower, ran_leader = replicas
    handed_over: list[float] = []  # reported for each job the store hands to a worker
    leader.on_lag = handed_over.append
    leader.resume_polling(60)  # a poll that never comes in this test
    leader.after(1, JobKind.EXECUTE)  # an approval answered on the leader
    wait_until(lambda: ran_leader.jobs == [(1, JobKind.EXECUTE)], timeout=20)
    assert handed_over == [] and leader.pending(1) == frozenset()  # never went through the store
    follower.after(2, JobKind.EXECUTE)  # one answered on the follower: stored for the leader
    assert follower.pending(2) == frozenset({JobKind.EXECUTE})
    leader.scheduler.wakeup()  # what the leader's poll does
    wait_until(lambda: (2, JobKind.EXECUTE) in ran_leader.jobs, timeout=20)
    wait_until(lambda: len(handed_over) == 1, timeout=20)
    leader.after(3, JobKind.EXECUTE, delay=30)  # a retry later: stored, as every later job
    assert leader.pending(3) == frozenset({JobKind.EXECUTE})
    assert ran_follower.jobs == []
