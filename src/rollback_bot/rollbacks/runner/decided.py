"""The row a decision has just committed, handed to the job that decision starts at once.

The job would read the row again a millisecond later. What it is handed is what the
decision's transaction wrote, and the job's own write still carries the row's version
(``RollbackRepository.attach``), so a move made in between is noticed there and the
job reads afresh. It travels in the context the job runs in (``JobScheduler.after``
runs it in a copy of the caller's), so nothing is kept once the job ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from rollback_bot.storage.models import Rollback

_DECIDED: ContextVar[Rollback | None] = ContextVar("decided_rollback", default=None)


@contextmanager
def deciding(row: Rollback) -> Iterator[None]:
    """While the decision on ``row`` is carried out, the jobs it starts at once get it."""
    token = _DECIDED.set(row)
    try:
        yield
    finally:
        _DECIDED.reset(token)


def decided(rollback_id: int) -> Rollback | None:
    """The row the decision that started this job committed, if it was that rollback's."""
    row = _DECIDED.get()
    return row if row is not None and row.id == rollback_id else None
