"""The bot's trace on the cluster: ``kubernetes.io/change-cause`` and core/v1 Events.

Every change the bot makes carries a change-cause (which rollback and incident, who
requested and approved it, why), so ``kubectl rollout history`` says who did what; and each
step of a rollback is a Kubernetes Event on the object (reasons ``RollbackStarted``,
``RolledBack``, ``RollbackPaused``, ``RollbackFailed``), so ``kubectl describe`` shows it.
Neither carries anything secret: ids, Slack user ids, the reason a person typed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from rollback_bot.kube.client import KubeApis

log = logging.getLogger(__name__)

CHANGE_CAUSE = "kubernetes.io/change-cause"
COMPONENT = "rollback-bot"
_APPS_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"})
#: kubectl shows the change-cause in one table cell: keep it to one readable line.
MAX_CAUSE = 400

STARTED, ROLLED_BACK, PAUSED, FAILED = (
    "RollbackStarted",
    "RolledBack",
    "RollbackPaused",
    "RollbackFailed",
)


def change_cause(
    *,
    rollback: str,
    incident: str | None,
    requested_by: str,
    approved_by: tuple[str, ...],
    reason: str,
    target: str,
) -> str:
    """One line: ``rollback-bot R-1 (INC-1): to revision 1 (img); requested by U1, ...``."""
    where = f" ({incident})" if incident else ""
    approved = f", approved by {', '.join(approved_by)}" if approved_by else ""
    why = f": {' '.join(reason.split())}" if reason.strip() else ""
    text = f"{COMPONENT} {rollback}{where}: to {target}; requested by {requested_by}{approved}{why}"
    return text if len(text) <= MAX_CAUSE else text[: MAX_CAUSE - 1] + "…"


@dataclass(frozen=True)
class EventRecorder:
    """Writes Events as the bot itself; a failure is logged and never stops a rollback."""

    apis: KubeApis
    # The client of a named cluster (``Clusters.get``); None: every Event goes to ``apis``.
    by_cluster: Callable[[str | None], KubeApis] | None = None

    def record(
        self,
        *,
        namespace: str,
        kind: str,
        name: str,
        reason: str,
        message: str,
        at: datetime,
        warning: bool = False,
        cluster: str | None = None,
        uid: str | None = None,
    ) -> bool:
        """``uid``: the object's, when the caller has just read it (else it is looked up)."""
        apis = self.by_cluster(cluster) if self.by_cluster is not None else self.apis
        api_version = "apps/v1" if kind in _APPS_KINDS else "v1"
        uid = uid or self._uid(apis, namespace, kind, name)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        body: Any = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{name}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": api_version,
                "kind": kind,
                "name": name,
                "namespace": namespace,
                **({"uid": uid} if uid else {}),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            apis.call_raw(
                "POST", "/api/v1/namespaces/{namespace}/events", {"namespace": namespace}, body=body
            )
        except (ApiException, OSError) as exc:
            log.warning(
                "could not write event %s on %s %s/%s: %s", reason, kind, namespace, name, exc
            )
            return False
        return True

    @staticmethod
    def _uid(apis: KubeApis, namespace: str, kind: str, name: str) -> str | None:
        try:
            obj: Any = None
            if kind == "Deployment":
                obj = apis.apps.read_namespaced_deployment(name, namespace)
            elif kind == "StatefulSet":
                obj = apis.apps.read_namespaced_stateful_set(name, namespace)
            elif kind == "DaemonSet":
                obj = apis.apps.read_namespaced_daemon_set(name, namespace)
            elif kind == "Service":
                obj = apis.core.read_namespaced_service(name, namespace)
            uid = obj.metadata.uid if obj is not None and obj.metadata is not None else None
            return str(uid) if uid else None
        except (ApiException, OSError):
            return None
