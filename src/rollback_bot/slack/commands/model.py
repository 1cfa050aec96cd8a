"""The typed commands the grammar produces: one dataclass per thing a person can ask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Strategy = Literal["instant", "blue-green", "gradual"]
ExportFormat = Literal["md", "json", "html"]

STRATEGIES: tuple[Strategy, ...] = ("instant", "blue-green", "gradual")
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("md", "json", "html")


# --- commands ---------------------------------------------------------------


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class RequestRollback:
    """Roll ``service`` back; a drill runs the same path with a server-side dry run."""

    service: str
    # None: the last known stable revision. int: a revision number. str: an
    # image tag or reference that the service layer resolves to a revision.
    to_revision: int | str | None = None
    strategy: Strategy | None = None  # None: the catalog's strategy
    reason: str | None = None
    drill: bool = False
    force_bad: bool = False  # `--force-bad`: the target is known bad, roll back anyway


@dataclass(frozen=True)
class MarkRelease:
    """A person's verdict on a revision: good (may be proposed) or bad (never proposed)."""

    service: str
    revision: int
    verdict: Literal["good", "bad"]
    reason: str | None = None


@dataclass(frozen=True)
class DeclareMitigated:
    incident_id: int
    reason: str | None = None


@dataclass(frozen=True)
class Approve:
    rollback_id: int


@dataclass(frozen=True)
class Deny:
    rollback_id: int
    reason: str | None = None


@dataclass(frozen=True)
class Pause:
    rollback_id: int


@dataclass(frozen=True)
class Resume:
    rollback_id: int


@dataclass(frozen=True)
class Abort:
    rollback_id: int


@dataclass(frozen=True)
class ResumeGitOps:
    """Resume the Argo CD / Flux reconciliation a rollback paused (once the fix is merged)."""

    rollback_id: int


@dataclass(frozen=True)
class Status:
    """``target`` is the canonical text (``checkout``, ``R-12``, ``INC-7``) or None for all."""

    target: str | None = None
    service: str | None = None
    rollback_id: int | None = None
    incident_id: int | None = None


@dataclass(frozen=True)
class History:
    service: str


@dataclass(frozen=True)
class Export:
    incident_id: int
    fmt: ExportFormat = "md"


@dataclass(frozen=True)
class KillFlag:
    """Turn a feature flag off: the fastest rollback when the change sits behind one."""

    service: str
    flag: str


@dataclass(frozen=True)
class Note:
    """A person's note on an incident's timeline."""

    incident_id: int
    text: str


Command = (
    Help
    | RequestRollback
    | Approve
    | Deny
    | Pause
    | Resume
    | Abort
    | ResumeGitOps
    | Status
    | History
    | Export
    | KillFlag
    | MarkRelease
    | DeclareMitigated
    | Note
)
