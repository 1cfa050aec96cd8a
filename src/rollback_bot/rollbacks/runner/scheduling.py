"""Jobs in the database: APScheduler 3 with its SQLAlchemy job store, owned by one runner.

A restart finds pending steps, gates and countdowns where they were, because
they are rows of ``apscheduler_jobs``. How a stored job finds its runner again:
APScheduler pickles a job's callable by name, so every job is stored under the
name ``jobs.stored_job``; the job store below is created by the runner and, each
time it loads a job, points the job at that runner's dispatch. No process-wide
registry is needed, and two runners in one process (tests do that) never run
each other's jobs.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable
from concurrent import futures
from datetime import datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from sqlalchemy.engine import Engine

from rollback_bot.clock import Clock
from rollback_bot.rollbacks.runner.jobs import (
    CANCELLED_BY_HALT,
    JobKind,
    job_id,
    parse_job_id,
    stored_job,
)

Dispatch = Callable[[int, JobKind], None]


class RunnerJobStore(SQLAlchemyJobStore):  # type: ignore[misc]  # APScheduler 3 is untyped
    """The SQLAlchemy job store, whose loaded jobs run in the runner that owns it.

    Only the three public lookups are overridden; the pickled form is untouched
    (``func_ref`` stays the stable name), so the table is exactly APScheduler's.
    """

    def __init__(self, *, engine: Engine, dispatch: Callable[[int, str], None]) -> None:
        super().__init__(engine=engine)
        self._dispatch = dispatch

    def lookup_job(self, job_id: str) -> Job | None:
        job = super().lookup_job(job_id)
        return None if job is None else self._bind(job)

    def get_due_jobs(self, now: datetime) -> list[Job]:
        return [self._bind(job) for job in super().get_due_jobs(now)]

    def get_all_jobs(self) -> list[Job]:
        return [self._bind(job) for job in super().get_all_jobs()]

    def _bind(self, job: Job) -> Job:
        job.func = self._dispatch
        return job


class JobScheduler:
    """Stores and cancels a runner's jobs; at most one of each kind per rollback."""

    def __init__(self, *, engine: Engine, clock: Clock, dispatch: Dispatch) -> None:
        self._clock = clock
        self._dispatch = dispatch
        self.scheduler = BackgroundScheduler(
            jobstores={"default": RunnerJobStore(engine=engine, dispatch=self._run)},
            executors={"default": ThreadPoolExecutor(max_workers=8)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
            timezone="UTC",
        )
        self._polling = threading.Event()
        # Work due now on the replica that runs jobs (``JobKind.runs_at_once``).
        self._at_once = futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="runner")
        self.on_lag: Callable[[float], None] | None = None  # seconds a job ran after its time
        self.scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)

    def _run(self, rollback_id: int, kind: str) -> None:
        # Stored as the plain value: a pickled enum would tie stored jobs to a module path.
        self._dispatch(rollback_id, JobKind(kind))

    # -- the scheduler itself ------------------------------------------------------
    def start_paused(self) -> None:
        self.scheduler.start(paused=True)

    def resume(self) -> None:
        self.scheduler.resume()

    def pause(self) -> None:
        """Run no more jobs (a job already running finishes); jobs can still be stored."""
        self._polling.set()
        if self.scheduler.running:
            self.scheduler.pause()

    def resume_polling(self, every: float) -> None:
        """Resume, and look at the job store every ``every`` seconds.

        With several replicas on one database, a job stored by another replica (a
        click answered there) does not wake this scheduler; the poll does. The delay
        between a job's time and its run is reported to ``on_lag`` if set.
        """
        self.resume()
        self._polling = threading.Event()
        stop = self._polling

        def poll() -> None:
            while not stop.wait(every):
                self.scheduler.wakeup()

        threading.Thread(target=poll, name="job-store-poll", daemon=True).start()

    def stop(self) -> None:
        self._polling.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self._at_once.shutdown(wait=True)

    def _submitted(self, event: JobSubmissionEvent) -> None:
        if self.on_lag is None or not event.scheduled_run_times:
            return
        late = (self._clock.now() - min(event.scheduled_run_times)).total_seconds()
        self.on_lag(max(late, 0.0))

    # -- jobs ------------------------------------------------------------------------
    def after(self, rollback_id: int, kind: JobKind, *, delay: float = 0.0) -> bool:
        """Run ``kind`` for the rollback ``delay`` seconds from now, replacing any pending one.

        Work that ``runs_at_once`` and is due now starts at once here when this
        scheduler runs jobs (the leader, or the only replica), in a copy of the caller's
        context (what the decision read for it, ``executors.kept_reads``); otherwise it is
        stored. True when it was started here at once.
        """
        if delay <= 0 and kind.runs_at_once and self.scheduler.state == STATE_RUNNING:
            context = contextvars.copy_context()
            self._at_once.submit(context.run, self._run, rollback_id, kind.value)
            return True
        self.at(rollback_id, kind, self._clock.now() + timedelta(seconds=delay))
        return False

    def at(self, rollback_id: int, kind: JobKind, when: datetime) -> None:
        self._add(rollback_id, kind, trigger="date", run_date=when)

    def every(self, rollback_id: int, kind: JobKind, *, seconds: float, until: datetime) -> None:
        self._add(rollback_id, kind, trigger="interval", seconds=seconds, end_date=until)

    def cancel(self, rollback_id: int) -> None:
        """Drop every pending job of the rollback except its approval deadline."""
        for kind in CANCELLED_BY_HALT:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(job_id(rollback_id, kind))

    def pending(self, rollback_id: int) -> frozenset[JobKind]:
        """The kinds of job stored for the rollback: what a restarted runner will find."""
        kinds: set[JobKind] = set()
        for job in self.scheduler.get_jobs():
            parsed = parse_job_id(job.id)
            if parsed is not None and parsed[0] == rollback_id:
                kinds.add(parsed[1])
        return frozenset(kinds)

    def _add(self, rollback_id: int, kind: JobKind, **trigger: Any) -> None:
        self.scheduler.add_job(
            stored_job,
            args=[rollback_id, kind.value],
            id=job_id(rollback_id, kind),
            replace_existing=True,
            misfire_grace_time=kind.misfire_grace_seconds,
            **trigger,
        )
