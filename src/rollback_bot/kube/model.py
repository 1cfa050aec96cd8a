"""What a change to the cluster is, in the bot's words: who it is made for, what was
written, what was checkpointed, whether the rollout finished, and why it could not be done.

These are the vocabulary of every Kubernetes call the bot makes, so they live with the
client at the bottom of the stack; the executors above build on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ExecutionError(Exception):
    """A rollback cannot proceed; the message is shown to people as-is.

    ``retryable`` tells the caller whether trying the same step again later
    could succeed (API 5xx, conflicts past the retry budget) or not (missing
    revision, paused Deployment, target slot scaled to zero).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Actor:
    """Who a change is made for; ``kube_user`` set means impersonate them."""

    slack_user: str
    kube_user: str | None = None
    kube_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """One write made to the cluster, for the timeline."""

    verb: str  # patched | replaced | scaled | switched | restored
    kind: str
    namespace: str
    name: str
    summary: str
    dry_run: bool = False


@dataclass(frozen=True)
class Verification:
    ok: bool
    done: bool  # False: not yet conclusive, ask again later
    detail: str


@dataclass(frozen=True)
class SnapshotRecord:
    kind: str  # deployment | configmap | service | ingress
    namespace: str
    name: str
    revision: int | None
    body: dict[str, Any]
