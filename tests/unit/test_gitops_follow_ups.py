"""The GitOps follow-ups a postmortem lists: pauses that nobody resumed yet."""

from __future__ import annotations

from rollback_bot.rollbacks.gitops_follow_ups import follow_ups


def test_a_pause_is_a_follow_up_until_it_is_resumed() -> None:
    paused = {
        "follow_up": "Resume GitOps (Flux Kustomization flux-system/apps) once the fix is merged",
        "resume_command": "/rollback resume-gitops R-3",
    }
    drill = {"drill": True, "previous": {}}  # a drill paused nothing: no follow-up
    events = [
        ("gitops.pausing", 3, {}),
        ("gitops.paused", 3, paused),
        ("gitops.paused", 4, drill),
        ("gitops.paused", 5, {**paused, "resume_command": "/rollback resume-gitops R-5"}),
        ("gitops.resumed", 5, {}),
    ]
    assert follow_ups(events) == [
        "Resume GitOps (Flux Kustomization flux-system/apps) once the fix is merged: "
        "`/rollback resume-gitops R-3`"
    ]
    assert follow_ups([]) == []
