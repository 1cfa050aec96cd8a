"""What can happen on an incident's timeline: every kind of entry the bot writes.

The timeline is the audit log and the source of every postmortem, so its vocabulary is
closed: readers (the postmortem, "known stable" revisions, recovery) can rely on a kind
meaning one thing. The values are the strings stored in ``timeline_events.kind``; they
never change, because old rows keep them.

A rollback entering a state is recorded as ``rollback.<state>`` (one member per
``rollback_bot.rollbacks.lifecycle.State``), plus ``rollback.approval`` for an approval
that is not yet enough and ``rollback.step`` for a gradual step applied.
"""

from __future__ import annotations

from enum import StrEnum


class TimelineKind(StrEnum):
    # incidents
    INCIDENT_OPENED = "incident.opened"
    INCIDENT_MITIGATED = "incident.mitigated"
    INCIDENT_RESOLVED = "incident.resolved"
    POSTMORTEM_EXPORTED = "postmortem.exported"
    # alerts
    ALERT_FIRING = "alert.firing"
    ALERT_RESOLVED = "alert.resolved"
    ALERT_SILENCED = "alert.silenced"
    # a rollback entering each state of its lifecycle
    ROLLBACK_REQUESTED = "rollback.requested"
    ROLLBACK_SCHEDULED = "rollback.scheduled"
    ROLLBACK_APPROVED = "rollback.approved"
    ROLLBACK_EXECUTING = "rollback.executing"
    ROLLBACK_PAUSED = "rollback.paused"
    ROLLBACK_VERIFYING = "rollback.verifying"
    ROLLBACK_DONE = "rollback.done"
    ROLLBACK_DENIED = "rollback.denied"
    ROLLBACK_FAILED = "rollback.failed"
    ROLLBACK_ABORTED = "rollback.aborted"
    # a rollback's progress within a state
    ROLLBACK_APPROVAL = "rollback.approval"  # approved, but more approvals are needed
    ROLLBACK_APPLYING = "rollback.applying"
    ROLLBACK_STEP = "rollback.step"
    ROLLBACK_SKIPPED = "rollback.skipped"
    ROLLBACK_EXPIRED = "rollback.expired"
    ROLLBACK_REFUSED = "rollback.refused"
    ERROR = "error"  # a step failed and may be retried
    # automatic rollbacks
    COUNTDOWN_STARTED = "countdown.started"
    COUNTDOWN_ELAPSED = "countdown.elapsed"
    COUNTDOWN_CANCELLED = "countdown.cancelled"
    # the health gate
    HEALTH_PASSED = "health.passed"
    HEALTH_FAILED = "health.failed"
    HEALTH_CHECK = "health.check"  # one check of the gate: source, query, value, result
    # the cluster
    KUBE_CHANGED = "kube.changed"  # written by a rollback
    KUBE_MANUAL_CHANGE = "kube.manual_change"  # by someone else, while an incident is open

    SLACK_UNDELIVERED = "slack.undelivered"  # the outbox gave up on a message
    # GitOps reconciliation (Argo CD, Flux) paused for a rollback and resumed after it;
    # ``gitops.paused`` carries ``follow_up`` until a ``gitops.resumed`` for the same rollback
    GITOPS_PAUSING = "gitops.pausing"  # previous settings stored, the patch not yet confirmed
    GITOPS_PAUSED = "gitops.paused"
    GITOPS_RESUMED = "gitops.resumed"
    # people's notes: `/rollback note INC-7 ...` and the "Add to incident timeline" shortcut
    NOTE_ADDED = "note.added"
    NOTE_REFUSED = "note.refused"  # someone not allowed tried; what they wrote is not kept
    # what is known about a release (rolled back from, verified, marked by a person)
    RELEASE_VERDICT = "release.verdict"

    @classmethod
    def rollback_entered(cls, state: str) -> TimelineKind:
        """The kind for a rollback entering ``state`` (a lifecycle state's value)."""
        return cls(f"rollback.{state}")

    @classmethod
    def alert(cls, status: str) -> TimelineKind:
        """The kind for an alert group now ``status`` (``firing`` or ``resolved``)."""
        return cls(f"alert.{status}")


__all__ = ["TimelineKind"]
