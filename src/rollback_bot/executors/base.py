"""The one interface the lifecycle drives, whatever the strategy.

A rollback is planned once (``plan``: a read-only impact preview that is stored
with the request and shown before approval), then applied step by step
(``apply_step``; instant and blue-green have one step, gradual several), then
verified (``verify``). Every method is safe to call again after a crash: a step
re-reads the cluster and re-decides instead of replaying blindly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rollback_bot.catalog import Service
from rollback_bot.kube.model import Actor, Change, SnapshotRecord, Verification


@dataclass(frozen=True)
class Plan:
    """What a rollback will change, decided before approval; JSON-safe via ``to_dict``."""

    strategy: str
    from_revision: int | None
    to_revision: int | None
    from_image: str | None
    to_image: str | None
    steps: tuple[int, ...] = ()  # gradual: canary percentages; others: empty
    changes: tuple[str, ...] = ()  # human lines: "image: a:v2 -> a:v1", "configmap/x key y: 1 -> 2"
    warnings: tuple[str, ...] = ()  # gitops-managed, revisionHistoryLimit < 3, ...
    detail: dict[str, Any] = field(default_factory=dict)  # strategy-specific, JSON-safe

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "from_revision": self.from_revision,
            "to_revision": self.to_revision,
            "from_image": self.from_image,
            "to_image": self.to_image,
            "steps": list(self.steps),
            "changes": list(self.changes),
            "warnings": list(self.warnings),
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(
            strategy=data["strategy"],
            from_revision=data.get("from_revision"),
            to_revision=data.get("to_revision"),
            from_image=data.get("from_image"),
            to_image=data.get("to_image"),
            steps=tuple(data.get("steps", ())),
            changes=tuple(data.get("changes", ())),
            warnings=tuple(data.get("warnings", ())),
            detail=dict(data.get("detail", {})),
        )


@dataclass(frozen=True)
class StepResult:
    step: int  # index of the step just applied
    finished: bool  # True when no step remains
    changes: tuple[Change, ...] = ()
    message: str = ""  # for the thread: "canary at 20%", "already at revision 3"
    noop: bool = False


class SnapshotStore(Protocol):
    """Where checkpoints live (the database, in the running bot)."""

    def save(self, records: Sequence[SnapshotRecord]) -> None: ...

    def configmaps_for_revision(
        self, *, namespace: str, deployment: str, revision: int
    ) -> dict[str, dict[str, Any]]:
        """ConfigMap name -> body as last seen while ``revision`` was live."""
        ...


class Executor(Protocol):
    strategy: str

    def plan(self, service: Service, *, to_revision: int | None = None) -> Plan: ...

    def snapshot(self, service: Service) -> list[SnapshotRecord]: ...

    def apply_step(
        self, service: Service, plan: Plan, *, step: int, actor: Actor, drill: bool
    ) -> StepResult: ...

    def verify(self, service: Service, plan: Plan, *, drill: bool) -> Verification: ...
