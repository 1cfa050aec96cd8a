"""What an executor read for a rollback's checkpoint, kept for the first step right after.

Beginning a rollback reads the workload to checkpoint it; its first step, a few
milliseconds later on the same thread, would read the same object again before
writing. Inside ``first_step_reads()`` (the runner's execute job: snapshot, the
move to executing, the first step) an executor may ``keep`` what its snapshot
read and ``take`` it back once, in that step. The approval that starts the job
opens the block too: the job runs in a copy of its context (``JobScheduler.after``),
so the approval's own read of the Deployment can serve the checkpoint.

This is safe because every write built from a read carries the
``resourceVersion`` it was decided on: if the object changed in between, the
write answers 409 and the retry reads afresh (``take`` hands a read out once).
Outside the block nothing is kept, so no read outlives the job it was made for.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_KEPT: ContextVar[dict[Hashable, Any] | None] = ContextVar("kept_reads", default=None)


@contextmanager
def first_step_reads() -> Iterator[dict[Hashable, Any]]:
    """While the block runs (in this context), reads kept by ``keep`` can be taken once.

    Inside a block already open (the deciding thread's, carried into the job) it goes
    on with that one's reads. Yields the kept reads so the caller can drop them
    (``clear()``) when the step that follows is not the one they were made for.
    """
    open_already = _KEPT.get()
    kept: dict[Hashable, Any] = {} if open_already is None else open_already
    token = _KEPT.set(kept)
    try:
        yield kept
    finally:
        _KEPT.reset(token)


def keeping() -> bool:
    """Whether a ``first_step_reads`` block is open, so a read kept now can be used."""
    return _KEPT.get() is not None


def keep(key: Hashable, read: Any) -> None:
    kept = _KEPT.get()
    if kept is not None:
        kept[key] = read


def take(key: Hashable) -> Any | None:
    """The read kept under ``key``, once; None outside a block or when nothing was kept."""
    kept = _KEPT.get()
    return None if kept is None else kept.pop(key, None)
