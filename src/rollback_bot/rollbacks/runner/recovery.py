"""After a restart: every active rollback is read back and handed to the reactor.

Only rows and the job store are read, never the timeline: the timeline says what
happened for people, the rows say where each rollback stands for the runner.
"""

from __future__ import annotations

from collections.abc import Callable

from rollback_bot.rollbacks.lifecycle import ACTIVE_STATES
from rollback_bot.rollbacks.runner.reactor import Action, Progress, after_restart
from rollback_bot.rollbacks.runner.scheduling import JobScheduler
from rollback_bot.storage.models import Rollback
from rollback_bot.storage.uow import UnitOfWorkFactory


def recover(
    *,
    uow: UnitOfWorkFactory,
    jobs: JobScheduler,
    step_seconds: Callable[[Rollback], float],
    perform: Callable[[Rollback, Action], None],
) -> None:
    """Resume what is safe to resume and pause what was mid-step, one rollback at a time."""
    with uow(read_only=True) as u:
        active = u.rollbacks.list_by_state(states=sorted(state.value for state in ACTIVE_STATES))
    for row in active:
        progress = Progress.of(row, pending=jobs.pending(row.id), step_seconds=step_seconds(row))
        for action in after_restart(progress):
            perform(row, action)
