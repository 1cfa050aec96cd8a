"""The kinds of job the runner stores, and their ids: the one place both are spelled.

A job id names its rollback and its kind, so that storing a job again replaces it
(at most one of each kind per rollback) and recovery can tell from the job store
alone which work is still pending. Work kinds live under ``rb<id>-<kind>``; the
two kinds that only keep time (redrawing a countdown, closing an unapproved
request) have ids of their own, because pending time-keeping is not "someone is
on it" and must not stop recovery from resuming the rollback.
"""

from __future__ import annotations

import re
from enum import StrEnum


class JobKind(StrEnum):
    EXECUTE = "execute"  # snapshot, begin, first step
    STEP = "step"  # apply the current step now
    LAST = "last"  # "go to 0 now": jump to the final step
    GATE = "gate"  # health gate, then the current step
    VERIFY = "verify"  # poll until healthy or out of time
    COUNTDOWN = "countdown"  # an automatic rollback's countdown elapsed
    REFRESH = "refresh"  # redraw the countdown message
    EXPIRE = "expire"  # close a request nobody approved in time

    @property
    def is_work(self) -> bool:
        """Whether a pending job of this kind means the rollback is being moved on."""
        return self not in (JobKind.REFRESH, JobKind.EXPIRE)

    @property
    def runs_at_once(self) -> bool:
        """Whether, due now, it may start at once rather than through the job store.

        The row alone says this work is owed (approved: execute; verifying: verify),
        so a restart before it ran redoes it (``reactor.after_restart``) with no stored
        job; the store's round trips would only stand between an approval and its write.
        """
        return self in (JobKind.EXECUTE, JobKind.VERIFY)

    @property
    def misfire_grace_seconds(self) -> float | None:
        """How late a job may still run after a stall or a restart (None: however late).

        A countdown or a redraw that is late is wrong, so it is dropped; work that
        is late is still owed; expiry is checked against the clock, so late is fine.
        """
        if self in (JobKind.COUNTDOWN, JobKind.REFRESH):
            return 1
        if self is JobKind.EXPIRE:
            return None
        return 3600


#: What ``halt`` and ``cancel countdown`` stop: everything but the approval deadline.
CANCELLED_BY_HALT = frozenset(kind for kind in JobKind if kind is not JobKind.EXPIRE)

_KINDS = {kind.value: kind for kind in JobKind}
_WORK_ID = re.compile(r"rb(?P<rollback>\d+)-(?P<kind>[a-z]+)")
_OWN_IDS = {JobKind.REFRESH: "countdown-refresh-{}", JobKind.EXPIRE: "expire-{}"}
_OWN_ID = {
    kind: re.compile(pattern.replace("{}", r"(?P<rollback>\d+)"))
    for kind, pattern in _OWN_IDS.items()
}


def job_id(rollback_id: int, kind: JobKind) -> str:
    """The id a job of ``kind`` for ``rollback_id`` is stored under."""
    own = _OWN_IDS.get(kind)
    return own.format(rollback_id) if own else f"rb{rollback_id}-{kind.value}"


def parse_job_id(value: str) -> tuple[int, JobKind] | None:
    """The rollback and kind of a stored job id; None for an id the runner did not make."""
    work = _WORK_ID.fullmatch(value)
    if work:
        kind = _KINDS.get(work["kind"])
        return (int(work["rollback"]), kind) if kind and kind.is_work else None
    for kind, pattern in _OWN_ID.items():
        own = pattern.fullmatch(value)
        if own:
            return int(own["rollback"]), kind
    return None


def stored_job(rollback_id: int, kind: str) -> None:
    """The name every job is stored under; it never runs a job itself.

    APScheduler 3 pickles a job's callable as a ``module:name`` reference and
    resolves it again when it loads the job, so a stored job needs a stable,
    importable name. The runner's job store (``scheduling.RunnerJobStore``)
    replaces the resolved callable with its own runner's dispatch on every load,
    so a job only ever runs in the runner whose store holds it; there is no
    process-wide "current runner" to find. Reaching this body means a job was
    loaded by some other store.
    """
    raise RuntimeError(
        f"job {kind} for R-{rollback_id} was loaded outside a runner's job store; "
        "only the runner that stores a job can run it"
    )
