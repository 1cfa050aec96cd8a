"""GitOps follow-ups from the timeline alone: a pause nobody resumed yet is work left to do.

Kept apart from ``rollbacks.gitops`` (which talks to the cluster) so the postmortem export
lists them without importing the Kubernetes client.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rollback_bot.ids import format_rollback_id as rid
from rollback_bot.timeline import TimelineKind


def resume_command(rollback_id: int) -> str:
    return f"/rollback resume-gitops {rid(rollback_id)}"


def follow_ups(events: Iterable[tuple[str, int | None, dict[str, Any]]]) -> list[str]:
    """The postmortem's GitOps follow-ups: every pause not resumed yet, from the timeline's
    (kind, rollback id, data) in order. For the export to list under "Follow-ups"."""
    open_pauses: dict[int, str] = {}
    for kind, rollback_id, data in events:
        if rollback_id is None:
            continue
        if kind == TimelineKind.GITOPS_PAUSED and data.get("follow_up"):
            command = data.get("resume_command") or resume_command(rollback_id)
            open_pauses[rollback_id] = f"{data['follow_up']}: `{command}`"
        elif kind == TimelineKind.GITOPS_RESUMED:
            open_pauses.pop(rollback_id, None)
    return list(open_pauses.values())
