"""The one interface the lifecycle drives, whatever the strategy.

A rollback is planned once (``plan``: a read-only impact preview that is stored
with the request and shown before approval), then applied step by step
(``apply_step``; instant and blue-green have one step, gradual several), then
verified (``verify``). Every method is safe to call again after a crash: a step
re-reads the cluster and re-decides instead of replaying blindly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import TypeAdapter

from rollback_bot.kube.model import Actor, Change, SnapshotRecord, Verification
from rollback_bot.kube.revisions import images_of

if TYPE_CHECKING:
    from rollback_bot.catalog import Service


@dataclass(frozen=True)
class Plan:
    """What a rollback will change, decided before approval; stored as JSON via ``to_dict``."""

    strategy: str
    from_revision: int | None = None
    to_revision: int | None = None
    from_image: str | None = None
    to_image: str | None = None
    steps: tuple[int, ...] = ()  # gradual: canary percentages; others: empty
    changes: tuple[str, ...] = ()  # human lines: "image: a:v2 -> a:v1", "configmap/x key y: 1 -> 2"
    warnings: tuple[str, ...] = ()  # gitops-managed, revisionHistoryLimit < 3, ...
    detail: dict[str, Any] = field(default_factory=dict)  # strategy-specific, JSON-safe

    def to_dict(self) -> dict[str, Any]:
        """The stored form: every field in declaration order, tuples as lists."""
        data: dict[str, Any] = _PLAN_JSON.dump_python(self, mode="json")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """Back from the stored form; a key missing from an older row takes its default."""
        return _PLAN_JSON.validate_python(data)


# pydantic reads and writes the stdlib dataclass as it is declared, so the stored JSON
# follows the fields without a hand-kept list of them.
_PLAN_JSON: TypeAdapter[Plan] = TypeAdapter(Plan)


def moved_off_target(plan: Plan, template: Mapping[str, Any], where: str) -> Verification | None:
    """A failed verification when ``template`` no longer runs the plan's target images.

    Every workload executor asks this before reading the rollout's status: a healthy rollout
    proves nothing when someone deployed again after the rollback. ``None`` means the images
    are the target's (or the plan recorded none to compare with).
    """
    wanted = plan.detail.get("target_images")
    images = list(images_of(template))
    if wanted is None or images == list(wanted):
        return None
    return Verification(
        False,
        True,
        f"{where} no longer runs the target revision: images are {', '.join(images)} "
        "(changed again after the rollback?)",
    )


@dataclass(frozen=True)
class StepResult:
    step: int  # index of the step just applied
    finished: bool  # True when no step remains
    changes: tuple[Change, ...] = ()
    message: str = ""  # for the thread: "canary at 20%", "already at revision 3"
    noop: bool = False
    # Writes this step exists to make that the cluster already shows: after a restart
    # mid-step, the ones that landed before the bot died (the runner records them).
    found_done: tuple[Change, ...] = ()


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
