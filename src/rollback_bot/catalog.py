"""The service catalog: which Deployments the bot may roll back, where to talk
about them, who decides, and how each one is rolled back.

The catalog is validated as a whole before anything runs, and every problem is
reported with its path (``services[2].policy.approvers: unknown key 'user'``)
so that ``rollback-bot check-config`` can list them all at once: a catalog
mistake found mid-incident costs far more than one found in review.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rollback_bot.alerts.matching import compile_matchers
from rollback_bot.alerts.triggers import AutomationLimits, TriggerRule


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
    op: Literal["gt", "gte", "lt", "lte", "eq"] = "gt"
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


class CatalogError(Exception):
    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid catalog:\n" + "\n".join(f"  {p}" for p in self.problems))


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _pydantic_problems(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = list(e["loc"])
        if e["type"] == "extra_forbidden":
            problems.append(f"{_path(loc[:-1])}: unknown key '{loc[-1]}'")
        elif e["type"] == "missing":
            problems.append(f"{_path(loc[:-1])}: missing key '{loc[-1]}'")
        else:
            message = str(e["msg"]).removeprefix("Value error, ")
            problems.append(f"{_path(loc)}: {message}")
    return problems


def _semantic_problems(catalog: Catalog) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for i, svc in enumerate(catalog.services):
        here = f"services[{i}]"
        if svc.name in seen:
            problems.append(f"{here}.name: duplicate service name '{svc.name}'")
        seen.add(svc.name)
        if svc.strategy == "blue-green" and svc.blue_green is None:
            problems.append(f"{here}.blue_green: required when strategy is blue-green")
        if svc.strategy == "gradual" and svc.gradual is None:
            problems.append(f"{here}.gradual: required when strategy is gradual")
        if svc.gradual and svc.gradual.driver == "ingress" and not svc.gradual.canary_ingress:
            problems.append(f"{here}.gradual.canary_ingress: required when driver is ingress")
        try:
            compile_matchers(svc.match)
        except ValueError as exc:
            problems.append(f"{here}.match: {exc}")
        for dep in svc.dependents:
            if dep not in {s.name for s in catalog.services}:
                problems.append(f"{here}.dependents: unknown service '{dep}'")
        if len({f.name for f in svc.flags}) != len(svc.flags):
            problems.append(f"{here}.flags: duplicate flag names")
        if svc.triggers and not svc.policy.automation:
            critical = [t.name for t in svc.triggers if t.severity == "critical"]
            if critical:
                problems.append(
                    f"{here}.triggers: critical rules {critical} need policy.automation: true"
                )
    return problems


def parse_catalog(data: object) -> Catalog:
    """Validate an already-loaded document; raise ``CatalogError`` listing every problem."""
    if not isinstance(data, dict):
        raise CatalogError(["(top level): expected a mapping with a 'services' list"])
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as err:
        raise CatalogError(_pydantic_problems(err)) from None
    problems = _semantic_problems(catalog)
    if problems:
        raise CatalogError(problems)
    return catalog


def load_catalog(path: str | Path) -> Catalog:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError([f"{path}: cannot read ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CatalogError([f"{path}: not valid YAML{where}"]) from None
    return parse_catalog(data)
