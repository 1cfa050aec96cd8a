"""The feature-flag kill switch as a rollback strategy ("flag").

Turning a flag off is often the fastest rollback there is, and it deserves the
same care as any other: policy, approval in production, a timeline entry, a
check that it took, and a one-click undo. So it runs through the lifecycle
like the others, with ``FlagSwitch`` doing the ConfigMap write.
"""

from __future__ import annotations

from rollback_bot.catalog import Service
from rollback_bot.executors.base import Plan, StepResult
from rollback_bot.executors.flag import FlagSwitch
from rollback_bot.kube.model import Actor, ExecutionError, SnapshotRecord, Verification

OFF = "__off__"  # plan marker: set the catalog's "off" value


class FlagExecutor:
    strategy = "flag"

    def __init__(self, switch: FlagSwitch) -> None:
        self._switch = switch

    def plan_flag(self, service: Service, flag: str, *, restore: str | None = OFF) -> Plan:
        """Plan turning ``flag`` off, or (``restore``) putting an earlier value back."""
        spec = service.flag(flag)
        if spec is None:
            known = ", ".join(f.name for f in service.flags) or "none"
            raise ExecutionError(f"{service.name} has no flag {flag!r} (flags: {known})")
        current = self._switch.current(service, flag)
        target = spec.off if restore == OFF else restore
        verb = "turn off" if restore == OFF else "restore"
        return Plan(
            strategy=self.strategy,
            from_revision=None,
            to_revision=None,
            from_image=None,
            to_image=None,
            changes=(f"flag {flag} ({spec.configmap}/{spec.key}): {current} -> {target}",),
            detail={
                "flag": flag,
                "set_to": target,
                "old": current,
                "verb": verb,
                "restore": restore,
            },
        )

    def plan(self, service: Service, *, to_revision: int | None = None) -> Plan:
        raise ExecutionError("a flag change needs a flag name: `/rollback flag <service> <flag>`")

    def snapshot(self, service: Service) -> list[SnapshotRecord]:
        return []  # the old value is in the plan, and the undo button carries it

    def apply_step(
        self, service: Service, plan: Plan, *, step: int, actor: Actor, drill: bool
    ) -> StepResult:
        flag = str(plan.detail["flag"])
        restore = plan.detail.get("restore", OFF)
        cause = plan.detail.get("change_cause")
        if restore == OFF:
            change = self._switch.flip(service, flag, actor=actor, drill=drill, cause=cause)
        else:
            change = self._switch.undo(
                service, flag, restore, actor=actor, drill=drill, cause=cause
            )
        if change.change is None:
            return StepResult(step, True, (), f"flag {flag} already {change.new}", noop=True)
        return StepResult(
            step, True, (change.change,), f"flag {flag}: {change.old} -> {change.new}"
        )

    def verify(self, service: Service, plan: Plan, *, drill: bool) -> Verification:
        flag = str(plan.detail["flag"])
        if drill:
            return Verification(True, True, f"drill: flag {flag} left as it was")
        now = self._switch.current(service, flag)
        want = plan.detail.get("set_to")
        if now == want:
            return Verification(True, True, f"flag {flag} is {now}")
        return Verification(False, True, f"flag {flag} is {now}, expected {want}")
