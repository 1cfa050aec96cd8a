"""The catalog's shape: which Deployments the bot may roll back, where to talk
about them, who decides, and how each one is rolled back.

Every model is strict (unknown keys are errors) and frozen: the catalog is read once
at start and shared by every thread. Checks that span services live in
``rollback_bot.catalog.loader``.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rollback_bot.catalog.operators import CompareOp
from rollback_bot.catalog.triggers import AutomationLimits, TriggerRule


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Audience(_Strict):
    users: tuple[str, ...] = ()
    usergroups: tuple[str, ...] = ()


class Policy(_Strict):
    requesters: Audience = Audience()
    approvers: Audience = Audience()
    # None: production needs one approval by another person, elsewhere none.
    approvals: int | None = Field(default=None, ge=0, le=5)
    automation: bool = False
    approval_ttl_seconds: int = Field(default=1800, gt=0)


class BlueGreen(_Strict):
    service: str  # the Kubernetes Service whose selector picks the live slot
    selector_key: str = "slot"
    slots: dict[str, str]  # selector value -> Deployment name

    @field_validator("slots")
    @classmethod
    def _two_slots(cls, slots: dict[str, str]) -> dict[str, str]:
        if len(slots) < 2:
            raise ValueError("needs at least two slots (selector value -> Deployment)")
        return slots


class Gradual(_Strict):
    stable: str
    canary: str
    driver: Literal["replicas", "ingress"] = "replicas"
    canary_ingress: str | None = None
    steps: tuple[int, ...] = (50, 20, 5, 0)
    step_seconds: float = Field(default=60, ge=0)

    @field_validator("steps")
    @classmethod
    def _descending_to_zero(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if not steps or steps[-1] != 0:
            raise ValueError("must end at 0 (all traffic back on stable)")
        if any(not 0 <= s <= 100 for s in steps):
            raise ValueError("each step is a canary percentage from 0 to 100")
        if any(a <= b for a, b in pairwise(steps)):
            raise ValueError("must strictly decrease")
        return steps


class PrometheusCheck(_Strict):
    url: str
    query: str
    op: CompareOp = "gt"  # the *bad* condition, as in an alerting rule
    threshold: float


class Health(_Strict):
    wait_seconds: float = Field(default=10, ge=0)  # settle time before a gate looks
    timeout_seconds: float = Field(default=300, gt=0)  # verification deadline
    alertmanager_url: str | None = None
    prometheus: PrometheusCheck | None = None


class Flag(_Strict):
    name: str
    configmap: str
    key: str
    format: Literal["plain", "flagd"] = "plain"
    off: str = "false"


class Impersonation(_Strict):
    user: str
    groups: tuple[str, ...] = ()


class Service(_Strict):
    name: str = Field(min_length=1)
    namespace: str = "default"
    deployment: str
    environment: str = "production"
    channel: str = Field(min_length=1)
    match: dict[str, str] = Field(min_length=1)
    strategy: Literal["instant", "blue-green", "gradual"] = "instant"
    policy: Policy = Policy()
    blue_green: BlueGreen | None = None
    gradual: Gradual | None = None
    health: Health = Health()
    flags: tuple[Flag, ...] = ()
    triggers: tuple[TriggerRule, ...] = ()
    automation_limits: AutomationLimits = AutomationLimits()
    dependents: tuple[str, ...] = ()
    impersonate: dict[str, Impersonation] = {}
    # A revision counts as stable once it ran this long with no alert.
    stable_window_seconds: int = Field(default=900, ge=0)

    @property
    def label(self) -> str:
        return f"{self.name}/{self.environment}"

    def flag(self, name: str) -> Flag | None:
        return next((f for f in self.flags if f.name == name), None)


class Catalog(_Strict):
    services: tuple[Service, ...]
    fallback_channel: str | None = None  # alerts that match no service
    group_by: tuple[str, ...] = ("service", "alertname")
    alertmanager_url: str | None = None  # for silences and the health gate
    prometheus_url: str | None = None  # for trigger rules with a `query`

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.services]
