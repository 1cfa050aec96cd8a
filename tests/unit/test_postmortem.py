"""The postmortem: timeline in order, time-to-acknowledge and time-to-mitigate."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollback_bot.incidents import postmortem

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@dataclass
class Incident:
    id: int = 7
    service: str = "checkout"
    title: str = "HighErrorRate on checkout"
    state: str = "mitigated"
    opened_at: datetime = T0
    acknowledged_at: datetime | None = T0 + timedelta(seconds=95)
    acknowledged_by: str | None = "U0ALICE"
    mitigated_at: datetime | None = T0 + timedelta(minutes=4, seconds=5)
    resolved_at: datetime | None = None


@dataclass
class Event:
    at: datetime
    actor: str
    kind: str
    summary: str
    rollback_id: int | None = None
    data: Any = field(default_factory=dict)


EVENTS = [
    Event(T0, "alertmanager", "alert.firing", "HighErrorRate firing"),
    Event(T0 + timedelta(seconds=95), "U0ALICE", "rollback.requested", "a | pipe", 1),
    Event(T0 + timedelta(minutes=4, seconds=5), "rollback-bot", "rollback.done", "verified", 1),
]


def test_metrics_and_order() -> None:
    doc = postmortem.build(Incident(), EVENTS)
    assert doc["metrics"] == {
        "time_to_acknowledge_seconds": 95.0,
        "time_to_mitigate_seconds": 245.0,
        "time_to_resolve_seconds": None,
    }
    assert [e["kind"] for e in doc["timeline"]] == [
        "alert.firing",
        "rollback.requested",
        "rollback.done",
    ]
    assert doc["timeline"][1]["rollback"] == "R-1"
    assert json.loads(postmortem.render(doc, "json")) == doc


def test_markdown_reads_well_and_escapes_cells() -> None:
    text = postmortem.render(postmortem.build(Incident(), EVENTS), "md")
    assert text.startswith("# Postmortem INC-7: HighErrorRate on checkout")
    assert "- Time to acknowledge: 1m 35s" in text
    assert "- Time to mitigate: 4m 05s" in text
    assert "- Time to resolve: n/a" in text
    assert "a \\| pipe" in text  # a pipe in a summary must not break the table


def test_unmitigated_incident_and_unknown_format() -> None:
    doc = postmortem.build(
        Incident(acknowledged_at=None, mitigated_at=None, acknowledged_by=None), []
    )
    assert doc["metrics"]["time_to_mitigate_seconds"] is None
    assert "- Acknowledged: never" in postmortem.to_markdown(doc)
    with pytest.raises(ValueError, match="unknown format"):
        postmortem.render(doc, "pdf")


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "n/a"), (3.25, "3.2s"), (61, "1m 01s"), (3723, "1h 02m 03s")]
)
def test_human_duration(seconds: float | None, text: str) -> None:
    assert postmortem.human_duration(seconds) == text
