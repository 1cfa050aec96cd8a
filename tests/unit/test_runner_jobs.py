"""Stored jobs: their ids, and that each one runs in the runner whose job store holds it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from rollback_bot.clock import SystemClock
from rollback_bot.rollbacks.runner.jobs import JobKind, job_id, parse_job_id
from rollback_bot.rollbacks.runner.scheduling import JobScheduler
from rollback_bot.storage import db


@pytest.mark.parametrize("kind", list(JobKind))
def test_every_job_id_reads_back_as_its_rollback_and_kind(kind: JobKind) -> None:
    assert parse_job_id(job_id(7, kind)) == (7, kind)


def test_work_and_time_keeping_have_ids_of_their_own() -> None:
    assert job_id(7, JobKind.GATE) == "rb7-gate"
    assert job_id(7, JobKind.REFRESH) == "countdown-refresh-7"
    assert job_id(7, JobKind.EXPIRE) == "expire-7"
    assert [kind for kind in JobKind if not kind.is_work] == [JobKind.REFRESH, JobKind.EXPIRE]
    for foreign in ("rb7-nap", "rb7-refresh", "cleanup", "expire-x"):
        assert parse_job_id(foreign) is None


def test_a_stored_job_runs_in_the_runner_whose_store_holds_it(
    engine: Engine, tmp_path: Path
) -> None:
    other_url = f"sqlite:///{tmp_path}/other.db"
    db.migrate(other_url)
    other = db.make_engine(other_url)
    seen: dict[str, list[tuple[int, JobKind]]] = {"a": [], "b": []}
    schedulers = {
        name: JobScheduler(
            engine=bound, clock=SystemClock(), dispatch=lambda r, k, n=name: seen[n].append((r, k))
        )
        for name, bound in (("a", engine), ("b", other))
    }
    try:
        for scheduler in schedulers.values():
            scheduler.start_paused()
        schedulers["a"].after(1, JobKind.VERIFY)
        schedulers["b"].after(2, JobKind.GATE)
        assert schedulers["a"].pending(1) == {JobKind.VERIFY}
        assert schedulers["a"].pending(2) == frozenset()
        for scheduler in schedulers.values():
            scheduler.resume()
        deadline = time.monotonic() + 10
        while not (seen["a"] and seen["b"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == {"a": [(1, JobKind.VERIFY)], "b": [(2, JobKind.GATE)]}
    finally:
        for scheduler in schedulers.values():
            scheduler.stop()
        other.dispose()
