"""Is a Deployment's rollout finished? The same answer ``kubectl rollout status`` gives.

This reproduces kubectl's ``DeploymentStatusViewer`` as a pure function over the
Deployment object, so a rollback is declared rolled out by exactly the rule
people already trust from the command line, and tests need no cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollback_bot.kube.model import Verification

TIMED_OUT = "ProgressDeadlineExceeded"


def rollout_status(deployment: Mapping[str, Any]) -> Verification:
    """``done=False`` means wait and ask again; ``done=True`` carries the verdict in ``ok``."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    name = meta.get("name", "")
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return Verification(False, False, "Waiting for deployment spec update to be observed...")
    progressing = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), None
    )
    if progressing is not None and progressing.get("reason") == TIMED_OUT:
        return Verification(False, True, f'deployment "{name}" exceeded its progress deadline')
    desired = spec.get("replicas")
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if desired is not None and updated < int(desired):
        return Verification(
            False,
            False,
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{updated} out of {desired} new replicas have been updated...",
        )
    if total > updated:
        return Verification(
            False,
            False,
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{total - updated} old replicas are pending termination...",
        )
    if available < updated:
        return Verification(
            False,
            False,
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{available} of {updated} updated replicas are available...",
        )
    return Verification(True, True, f'deployment "{name}" successfully rolled out')
