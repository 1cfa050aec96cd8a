"""The timeline's vocabulary: a closed set whose stored strings never change."""

from __future__ import annotations

from rollback_bot.rollbacks.lifecycle import State
from rollback_bot.timeline import TimelineKind

#: Every kind the bot wrote before the enum existed; rows in the field carry these.
STORED_BEFORE = {
    "alert.firing",
    "alert.resolved",
    "alert.silenced",
    "countdown.cancelled",
    "countdown.elapsed",
    "countdown.started",
    "error",
    "health.failed",
    "health.passed",
    "incident.opened",
    "incident.resolved",
    "kube.changed",
    "kube.manual_change",
    "postmortem.exported",
    "rollback.applying",
    "rollback.approval",
    "rollback.expired",
    "rollback.refused",
    "rollback.skipped",
    "rollback.step",
    *(f"rollback.{state.value}" for state in State),
}


#: Kinds added since, each with the change that introduced it.
ADDED_SINCE = {
    "health.check",  # every check of the health gate, one entry each
    "incident.mitigated",  # the incident's own state machine
    "release.verdict",  # rolled back from / verified / marked good or bad
    "slack.undelivered",  # a message the outbox gave up on
    "gitops.pausing",  # Argo CD / Flux: previous settings stored before the pause patch
    "gitops.paused",  # reconciliation paused for a rollback (a postmortem follow-up)
    "gitops.resumed",  # and restored exactly, by a person
    "note.added",  # a person's note: /rollback note, "Add to incident timeline"
    "note.refused",  # a note from someone who may not add one
}


def test_the_enum_values_are_exactly_the_strings_stored_before() -> None:
    assert {kind.value for kind in TimelineKind} == STORED_BEFORE | ADDED_SINCE
    assert {kind.value for kind in TimelineKind} >= STORED_BEFORE


def test_every_lifecycle_state_has_its_kind() -> None:
    for state in State:
        assert TimelineKind.rollback_entered(state) == f"rollback.{state.value}"


def test_alert_kinds_follow_the_group_status() -> None:
    assert TimelineKind.alert("firing") is TimelineKind.ALERT_FIRING
    assert TimelineKind.alert("resolved") is TimelineKind.ALERT_RESOLVED


def test_a_kind_is_stored_as_its_plain_string() -> None:
    assert str(TimelineKind.KUBE_MANUAL_CHANGE) == "kube.manual_change"
    assert type(str(TimelineKind.ERROR)) is str
