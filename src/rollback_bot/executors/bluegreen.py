"""Blue-green rollback: point the Service back at the warm slot.

A blue-green service runs two (or more) Deployments, the *slots*, behind one
Service whose selector picks the live one. Rolling back is one write: the
selector moves to another slot, and the slot that was live stays scaled up so
that rolling forward again is just as fast. The only way this goes wrong is
switching to a slot that cannot take the traffic, so the slot is checked right
before the switch and the switch is refused, with the reason, when the slot is
scaled to zero or not fully available.

The switch is a merge patch carrying the Service's ``resourceVersion``: if
someone else changed the Service in between, the API server answers 409 and
the executor re-reads and decides again instead of overwriting their change.
That re-read / decide / write loop lives here as ``guarded_write`` and is shared
by the other strategies that write with preconditions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from rollback_bot.catalog import BlueGreen, Service
from rollback_bot.executors.base import Plan, SnapshotStore, StepResult
from rollback_bot.kube.client import MERGE_PATCH, KubeApis, explain
from rollback_bot.kube.events import CHANGE_CAUSE
from rollback_bot.kube.model import Actor, Change, ExecutionError, SnapshotRecord, Verification

T = TypeVar("T")

WRITE_ATTEMPTS = 5
_BACKOFF_SECONDS = 0.05  # conflicts clear at once; 5xx get a short, growing pause


def guarded_write(attempt: Callable[[], T], *, what: str, attempts: int = WRITE_ATTEMPTS) -> T:
    """Run ``attempt`` (read, decide, write with a precondition) until it sticks.

    409 Conflict and 5xx answers are retried up to ``attempts`` times, each time
    calling ``attempt`` afresh so that it re-reads the object; past the budget
    they become a retryable ``ExecutionError``. Any other API error is
    translated at once (404, 403 and 422 do not get better by retrying).
    """
    last: ApiException | TransportError | None = None
    for n in range(attempts):
        try:
            return attempt()
        except ApiException as exc:
            if exc.status != 409 and not _is_server_error(exc):
                raise explain(exc, what) from exc
            last = exc
        except TransportError as exc:  # no answer at all: as retryable as a 503
            last = exc
        if not (isinstance(last, ApiException) and last.status == 409):
            time.sleep(_BACKOFF_SECONDS * (n + 1))
    if isinstance(last, ApiException):
        reason = "kept conflicting with other writers" if last.status == 409 else "kept failing"
        answer = f"HTTP {last.status}"
    else:
        reason, answer = "could not be reached", type(last).__name__
    raise ExecutionError(
        f"{what}: the API server {reason} ({answer}) after {attempts} attempts; safe to retry",
        retryable=True,
    ) from last


def _is_server_error(exc: ApiException) -> bool:
    return exc.status is None or exc.status == 0 or exc.status == 429 or exc.status >= 500


def dry_run(drill: bool) -> str | None:
    """The ``dryRun`` query value: ``All`` in a drill, so nothing is persisted."""
    return "All" if drill else None


def read_or_explain(read: Callable[[], T], *, what: str) -> T:
    """A read whose failure becomes an ``ExecutionError`` naming ``what``."""
    return guarded_write(read, what=what)


@dataclass(frozen=True)
class SlotState:
    slot: str
    deployment: str
    replicas: int
    available: int
    rolled_out: bool  # the controller has caught up with the latest spec
    image: str | None

    @property
    def fully_available(self) -> bool:
        return self.replicas > 0 and self.rolled_out and self.available >= self.replicas

    def refusal(self) -> str | None:
        """Why traffic must not go to this slot, or ``None`` when it may."""
        prefix = f"{self.slot} slot {self.deployment}"
        if self.replicas == 0:
            return f"{prefix} is scaled to zero; refusing to switch traffic to it"
        if self.available == 0:
            return f"{prefix} has 0 available replicas; refusing to switch traffic to it"
        if not self.fully_available:
            return (
                f"{prefix} has {self.available}/{self.replicas} replicas available"
                f"{'' if self.rolled_out else ' and is still rolling out'}; "
                "refusing to switch traffic to a slot that is not fully available"
            )
        return None


class BlueGreenExecutor:
    """Switches a Service's slot selector; one step."""

    strategy = "blue-green"

    def __init__(self, apis: KubeApis, snapshots: SnapshotStore | None = None) -> None:
        self._apis = apis
        self._snapshots = snapshots

    # -- plan --------------------------------------------------------------

    def plan(
        self, service: Service, *, to_revision: int | None = None, target_slot: str | None = None
    ) -> Plan:
        """The switch that would happen now; ``target_slot`` overrides the default choice.

        Without ``target_slot``, the target is the first other slot (catalog
        order) that is fully available; with exactly two slots that is simply
        "the other one". ``to_revision`` has no meaning for slots and is ignored.
        """
        bg = _config(service)
        live = self._live_slot(service, bg)
        states = {
            slot: read_or_explain(
                lambda slot=slot: self._slot(service, bg, slot),  # type: ignore[misc]
                what=f"deployment {service.namespace}/{bg.slots[slot]}",
            )
            for slot in bg.slots
        }
        target = target_slot or _default_target(live, states)
        if target not in bg.slots:
            raise ExecutionError(
                f"unknown slot '{target}' for {service.name}; slots are {', '.join(bg.slots)}"
            )
        if target == live:
            raise ExecutionError(
                f"{target} slot {bg.slots[target]} is already live for {service.name}; "
                "nothing to switch"
            )
        refusal = states[target].refusal()
        if refusal:
            raise ExecutionError(refusal)
        return Plan(
            strategy=self.strategy,
            from_revision=None,
            to_revision=None,
            from_image=states[live].image,
            to_image=states[target].image,
            changes=(
                f"service {service.namespace}/{bg.service} selector {bg.selector_key}: "
                f"{live} -> {target} (deployment {bg.slots[target]}, "
                f"{states[target].available}/{states[target].replicas} available)",
                f"{live} slot {bg.slots[live]} stays at {states[live].replicas} replicas (warm)",
            ),
            warnings=_other_candidates(live, target, states),
            detail={
                "service": bg.service,
                "selector_key": bg.selector_key,
                "from_slot": live,
                "target_slot": target,
                "from_deployment": bg.slots[live],
                "target_deployment": bg.slots[target],
            },
        )

    def snapshot(self, service: Service) -> list[SnapshotRecord]:
        """The Service and every slot Deployment, as they are before the switch."""
        bg = _config(service)
        ns = service.namespace
        client = self._apis.core.api_client
        svc = read_or_explain(
            lambda: self._apis.core.read_namespaced_service(bg.service, ns),
            what=f"service {ns}/{bg.service}",
        )
        records = [
            SnapshotRecord("service", ns, bg.service, None, client.sanitize_for_serialization(svc))
        ]
        for name in bg.slots.values():
            dep = self._read_deployment(ns, name)
            body = client.sanitize_for_serialization(dep)
            records.append(SnapshotRecord("deployment", ns, name, _revision(dep), body))
        if self._snapshots is not None:
            self._snapshots.save(records)
        return records

    # -- apply -------------------------------------------------------------

    def apply_step(
        self, service: Service, plan: Plan, *, step: int, actor: Actor, drill: bool
    ) -> StepResult:
        if step != 0:
            raise ExecutionError(f"blue-green has a single step (0); step {step} does not exist")
        bg = _config(service)
        target = str(plan.detail.get("target_slot") or "")
        if target not in bg.slots:
            raise ExecutionError(
                f"the plan's target slot '{target}' is not one of {', '.join(bg.slots)}"
            )
        writer = self._apis.for_actor(actor)
        ns = service.namespace

        def attempt() -> StepResult:
            svc = self._apis.core.read_namespaced_service(bg.service, ns)
            selector = _selector(svc)
            if selector.get(bg.selector_key) == target:
                return StepResult(
                    step=0,
                    finished=True,
                    message=f"service {ns}/{bg.service} already sends traffic to {target}",
                    noop=True,
                )
            refusal = self._slot(service, bg, target).refusal()
            if refusal:
                raise ExecutionError(refusal)
            meta: dict[str, Any] = {"resourceVersion": _resource_version(svc)}
            if cause := plan.detail.get("change_cause"):
                meta["annotations"] = {CHANGE_CAUSE: cause}
            patch = {"metadata": meta, "spec": {"selector": {bg.selector_key: target}}}
            writer.core.patch_namespaced_service(
                bg.service, ns, patch, dry_run=dry_run(drill), _content_type=MERGE_PATCH
            )
            before = selector.get(bg.selector_key)
            summary = f"selector {bg.selector_key}: {before} -> {target}"
            change = Change("switched", "Service", ns, bg.service, summary, dry_run=drill)
            verb = "would switch" if drill else "switched"
            return StepResult(
                step=0,
                finished=True,
                changes=(change,),
                message=f"{verb} {ns}/{bg.service} from {before} to {target} ({bg.slots[target]})",
            )

        return guarded_write(attempt, what=f"switching service {ns}/{bg.service}")

    # -- verify ------------------------------------------------------------

    def verify(self, service: Service, plan: Plan, *, drill: bool) -> Verification:
        """Done when the Service selects the target slot and that slot is fully available.

        In a drill nothing was switched, so the drill verifies what a real run
        would rely on: the target slot is still fully available.
        """
        bg = _config(service)
        target = str(plan.detail.get("target_slot") or "")
        if target not in bg.slots:
            return Verification(False, True, f"plan has no valid target slot ('{target}')")
        state = read_or_explain(
            lambda: self._slot(service, bg, target), what=f"deployment {bg.slots[target]}"
        )
        if drill:
            refusal = state.refusal()
            detail = refusal or f"drill: {target} slot {state.deployment} could take the traffic"
            return Verification(refusal is None, True, detail)
        live = self._live_slot(service, bg)
        if live != target:
            return Verification(
                False, True, f"service selects {bg.selector_key}={live}, expected {target}"
            )
        if not state.fully_available:
            return Verification(
                False,
                False,
                f"{target} slot {state.deployment}: {state.available}/{state.replicas} available",
            )
        return Verification(
            True, True, f"traffic on {target} ({state.deployment}, {state.available} available)"
        )

    # -- reading -----------------------------------------------------------

    def _live_slot(self, service: Service, bg: BlueGreen) -> str:
        ns = service.namespace
        svc = read_or_explain(
            lambda: self._apis.core.read_namespaced_service(bg.service, ns),
            what=f"service {ns}/{bg.service}",
        )
        live = _selector(svc).get(bg.selector_key)
        if live not in bg.slots:
            raise ExecutionError(
                f"service {ns}/{bg.service} selects {bg.selector_key}={live}, which is none of "
                f"the catalog's slots ({', '.join(bg.slots)}); fix the catalog or the Service"
            )
        return str(live)

    def _slot(self, service: Service, bg: BlueGreen, slot: str) -> SlotState:
        ns, name = service.namespace, bg.slots[slot]
        try:
            dep = self._apis.apps.read_namespaced_deployment(name, ns)
        except ApiException as exc:
            if exc.status == 404:
                raise ExecutionError(
                    f"{slot} slot deployment {ns}/{name} not found; refusing to switch traffic"
                ) from exc
            raise  # the caller's retry loop decides
        return slot_state(slot, dep)

    def _read_deployment(self, ns: str, name: str) -> Any:
        return read_or_explain(
            lambda: self._apis.apps.read_namespaced_deployment(name, ns),
            what=f"deployment {ns}/{name}",
        )


def slot_state(slot: str, dep: Any) -> SlotState:
    replicas = dep.spec.replicas if dep.spec.replicas is not None else 1
    status = dep.status
    available = (status.available_replicas or 0) if status else 0
    updated = (status.updated_replicas or 0) if status else 0
    observed = (status.observed_generation or 0) if status else 0
    rolled_out = observed >= (dep.metadata.generation or 0) and updated >= replicas
    containers = dep.spec.template.spec.containers or []
    image = containers[0].image if containers else None
    return SlotState(slot, dep.metadata.name, replicas, available, rolled_out, image)


def _config(service: Service) -> BlueGreen:
    if service.blue_green is None:
        raise ExecutionError(f"{service.name} has no blue_green section in the catalog")
    return service.blue_green


def _default_target(live: str, states: dict[str, SlotState]) -> str:
    others = [slot for slot in states if slot != live]
    ready = [slot for slot in others if states[slot].fully_available]
    # With no ready slot, name the first other one so the refusal explains it.
    return ready[0] if ready else others[0]


def _other_candidates(live: str, target: str, states: dict[str, SlotState]) -> tuple[str, ...]:
    rest = [s for s in states if s not in (live, target) and states[s].fully_available]
    if not rest:
        return ()
    return (f"chose slot {target}; {', '.join(rest)} could also take the traffic",)


def _revision(dep: Any) -> int | None:
    annotations = dep.metadata.annotations or {}
    value = annotations.get("deployment.kubernetes.io/revision")
    return int(value) if value and str(value).isdigit() else None


def _selector(svc: Any) -> dict[str, str]:
    return dict((svc.spec.selector if svc.spec else None) or {})


def _resource_version(obj: Any) -> str | None:
    return obj.metadata.resource_version if obj.metadata else None
