"""The catalog's shape: which Deployments the bot may roll back, where to talk
about them, who decides, and how each one is rolled back.

Every model is strict (unknown keys are errors) and frozen: the catalog is read once
at start and shared by every thread. Checks that span services live in
``rollback_bot.catalog.loader``.
"""

from __future__ import annotations

import difflib
import re
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rollback_bot.catalog.operators import CompareOp
from rollback_bot.catalog.triggers import AutomationLimits, TriggerRule

# The environments a service may declare. The two-person rule follows from this word
# (``production`` needs one approval by someone else unless ``policy.approvals`` says
# otherwise), so it is a closed vocabulary: a typo such as ``prod`` must not quietly
# turn the rule off.
ENVIRONMENTS: tuple[str, ...] = ("production", "staging", "development", "test")
TWO_PERSON_ENVIRONMENTS = frozenset({"production"})
_ENVIRONMENT_ALIASES = {
    "prod": "production",
    "prd": "production",
    "live": "production",
    "stage": "staging",
    "stg": "staging",
    "dev": "development",
    "develop": "development",
    "testing": "test",
    "qa": "test",
}
# Slack conversation ids: C (public channel), G (private channel), D (direct message).
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


def environment_problem(value: str) -> str | None:
    """Why ``value`` is not a declared environment, with a suggestion; None when it is."""
    if value in ENVIRONMENTS:
        return None
    lowered = value.strip().lower()
    guess = _ENVIRONMENT_ALIASES.get(lowered) or (lowered if lowered in ENVIRONMENTS else None)
    if guess is None:
        close = difflib.get_close_matches(lowered, ENVIRONMENTS, n=1, cutoff=0.6)
        guess = close[0] if close else None
    hint = f"did you mean {guess}? " if guess else ""
    return (
        f"unknown environment {value!r}: {hint}use one of {' | '.join(ENVIRONMENTS)} "
        "(production turns on the two-person rule)"
    )


def channel_problem(value: str) -> str | None:
    """Why ``value`` is not a Slack conversation id, with a hint; None when it is one."""
    if _CHANNEL_ID.match(value):
        return None
    if value.startswith("#") or value.islower():
        return (
            f"{value!r} is a channel name, not an id: use the channel's id (C..., G... "
            "for private ones), shown at the bottom of the channel's details in Slack"
        )
    return (
        f"{value!r} is not a Slack channel id: expected C, G or D followed by capital "
        "letters and digits, e.g. C0123ABCD"
    )


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


# A Go duration as helm's --timeout takes it ("300s", "5m", "1h30m"), or whole seconds.
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class HelmRelease(_Strict):
    """A Helm release rolled back with ``helm rollback`` (see ``rollback_bot.helm``)."""

    release: str = Field(min_length=1, max_length=53)  # Helm's own limit on release names
    namespace: str | None = None  # defaults to the service's namespace
    timeout: int | str = 300  # seconds, or a duration: "90s", "5m"
    wait: bool = True  # --wait: helm waits for the chart's objects to be ready

    @field_validator("timeout")
    @classmethod
    def _duration(cls, value: int | str) -> int | str:
        seconds = duration_seconds(value)
        if seconds is None or seconds <= 0:
            raise ValueError(
                f"{value!r} is not a timeout: use whole seconds (300) or a duration such as "
                '"90s", "5m" or "1h30m"'
            )
        return value

    @property
    def timeout_seconds(self) -> int:
        return duration_seconds(self.timeout) or 300


def duration_seconds(value: int | str) -> int | None:
    """Seconds in ``value`` (an int, or ``1h2m3s``-style text); None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    found = _DURATION.match(value.strip())
    if not value.strip() or found is None:
        return None
    h, m, s = (int(x or 0) for x in found.groups())
    return h * 3600 + m * 60 + s


class Impersonation(_Strict):
    user: str
    groups: tuple[str, ...] = ()


class ArgoCDApplication(_Strict):
    application: str = Field(min_length=1)
    namespace: str = "argocd"


class GitOps(_Strict):
    """How a service reconciled from Git is rolled back (see kube/gitops.py).

    ``pause``: auto (pause Argo CD / Flux as a step of the rollback), ask (the same, and the
    approval message says so: approving confirms it), refuse (no rollback while the tool
    reconciles; revert in Git instead).
    """

    pause: Literal["auto", "ask", "refuse"] = "auto"
    argocd: ArgoCDApplication | None = None  # the owning Application, when labels cannot say
    argocd_namespace: str = "argocd"  # where Applications live (label tracking looks there)


#: The workload keys a service names its target with (``target_kind``).
TARGET_KINDS: tuple[str, ...] = ("deployment", "statefulset", "daemonset")
#: Every kind of target; exactly one per service (a Helm release's and a Rollout's own
#: Deployments are rolled back with them, never named beside them).
TARGET_KEYS: tuple[str, ...] = (*TARGET_KINDS, "rollout", "helm")


def target_keys_problem(named: list[str]) -> str:
    """Why a service's target keys are wrong: none, or more than one."""
    has = f" (has {' and '.join(named)})" if named else ""
    return f"needs exactly one of {' / '.join(TARGET_KEYS)}{has}"


class Service(_Strict):
    name: str = Field(min_length=1)
    namespace: str = "default"
    # Exactly one target kind per service (loader's TARGET_KEYS); ``deployment`` stays a
    # plain str so the Deployment strategies read it as before ("" when another kind is
    # the target: a StatefulSet, DaemonSet, Argo Rollout or Helm release).
    deployment: str = ""
    statefulset: str | None = None
    daemonset: str | None = None
    rollout: str | None = None  # an Argo Rollout, rolled back with abort + undo
    # A kubeconfig context name; None: the bot's default client (in-cluster or current).
    cluster: str | None = Field(default=None, min_length=1)
    environment: str = "production"
    channel: str = Field(min_length=1)
    match: dict[str, str] = Field(min_length=1)
    strategy: Literal["instant", "blue-green", "gradual", "helm"] = "instant"
    helm: HelmRelease | None = None
    policy: Policy = Policy()
    blue_green: BlueGreen | None = None
    gradual: Gradual | None = None
    health: Health = Health()
    flags: tuple[Flag, ...] = ()
    triggers: tuple[TriggerRule, ...] = ()
    automation_limits: AutomationLimits = AutomationLimits()
    dependents: tuple[str, ...] = ()
    impersonate: dict[str, Impersonation] = {}
    gitops: GitOps = GitOps()
    # A revision counts as stable once it ran this long with no alert.
    stable_window_seconds: int = Field(default=900, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _helm_defaults(cls, data: Any) -> Any:
        """A Helm release is rolled back by helm, in its own namespace, unless told otherwise."""
        if not isinstance(data, dict) or not isinstance(data.get("helm"), dict):
            return data
        data = dict(data)
        data.setdefault("strategy", "helm")
        namespace = data["helm"].get("namespace")
        if isinstance(namespace, str) and namespace:
            data.setdefault("namespace", namespace)
        return data

    @field_validator("environment")
    @classmethod
    def _declared_environment(cls, value: str) -> str:
        problem = environment_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("channel")
    @classmethod
    def _channel_id(cls, value: str) -> str:
        problem = channel_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_target(self) -> Service:
        named = [k for k in TARGET_KEYS if getattr(self, k)]
        if len(named) != 1:
            raise ValueError(target_keys_problem(named))
        return self

    @property
    def target_kind(self) -> str:
        """``deployment`` | ``statefulset`` | ``daemonset``: which key names the workload."""
        return next((k for k in TARGET_KINDS if getattr(self, k)), "deployment")

    @property
    def target_name(self) -> str:
        return str(getattr(self, self.target_kind) or "")

    @property
    def target_ref(self) -> str:
        """``statefulset shop/db`` (with ``@cluster`` when the service names one)."""
        where = f" @{self.cluster}" if self.cluster else ""
        return f"{self.target_kind} {self.namespace}/{self.target_name}{where}"

    @property
    def label(self) -> str:
        """``checkout/production``, and ``@cluster`` when the service names one: every
        message, timeline entry and postmortem that names the service says where it runs."""
        where = f" @{self.cluster}" if self.cluster else ""
        return f"{self.name}/{self.environment}{where}"

    @property
    def approvals_required(self) -> int:
        """``policy.approvals`` when set; else one (by someone else) in production, else none."""
        if self.policy.approvals is not None:
            return self.policy.approvals
        return 1 if self.environment in TWO_PERSON_ENVIRONMENTS else 0

    def flag(self, name: str) -> Flag | None:
        return next((f for f in self.flags if f.name == name), None)


class Catalog(_Strict):
    services: tuple[Service, ...]
    fallback_channel: str | None = None  # alerts that match no service
    group_by: tuple[str, ...] = ("service", "alertname")
    alertmanager_url: str | None = None  # for silences and the health gate
    prometheus_url: str | None = None  # for trigger rules with a `query`

    @field_validator("fallback_channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        problem = channel_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.services]
