"""With an Alertmanager to ask, "mitigated" and "verified healthy" come from the gate.

Issue 13, item 3: every check of the health gate is on the timeline with its source,
query, value, threshold, result and time; a clear alert check mitigates the incident and
marks the target verified healthy; a firing one does neither.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.stack import LoopbackStack
from tests.e2e.conftest import MakeStack
from tests.e2e.execute_support import (
    FakeAlertmanager,
    command_reply,
    events,
    release_instant,
    request,
    rollback,
    running_alertmanager,
    running_stack,
    wait_state,
)


@pytest.fixture
def alertmanager() -> Iterator[FakeAlertmanager]:
    yield from running_alertmanager()


@pytest.fixture
def stack(
    make_stack: MakeStack, migrated_url: str, alertmanager: FakeAlertmanager
) -> Iterator[LoopbackStack]:
    yield from running_stack(make_stack, migrated_url, alertmanager, timeout_seconds=3)


def _incident(stack: LoopbackStack, incident_id: int) -> tuple[str, bool]:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        incident = uow.incidents.get(id=incident_id)
    assert incident is not None
    return incident.state, incident.mitigated_at is not None


def test_a_clear_alert_check_mitigates_and_verifies_the_target(stack: LoopbackStack) -> None:
    release_instant(stack, configmap=False)
    rollback_id = request(stack, "api")
    row = wait_state(stack, rollback_id, "done")
    assert row.incident_id is not None

    found = events(stack, rollback_id)
    checks = {e.data["name"]: e.data for e in found if e.kind == "health.check"}
    assert set(checks) == {"readiness", "alertmanager"}
    am = checks["alertmanager"]
    assert am["result"] == "passed" and am["value"] == [] and am["source"].startswith("http")
    assert "service=api" in am["query"] and am["threshold"] == "no alert firing" and am["at"]
    done = next(e for e in found if e.kind == "rollback.done")
    assert "incident mitigated" in done.summary
    assert done.data["checks"]["alertmanager"]["result"] == "passed"
    assert _incident(stack, row.incident_id) == ("mitigated", True)
    assert any(e.kind == "incident.mitigated" for e in events_of_incident(stack, row.incident_id))

    # The target is now known good by the bot's own verification.
    history = command_reply(stack, "history api")
    assert "verified healthy by the bot" in history


def test_a_firing_alert_fails_the_gate_and_nothing_is_called_mitigated(
    stack: LoopbackStack, alertmanager: FakeAlertmanager
) -> None:
    release_instant(stack, configmap=False)
    alertmanager.firing["api"] = ["HighErrorRate"]
    rollback_id = request(stack, "api")
    row = wait_state(stack, rollback_id, "failed")
    assert "HighErrorRate" in (rollback(stack, rollback_id).error or "")
    checks = [e.data for e in events(stack, rollback_id) if e.kind == "health.check"]
    assert any(c["name"] == "alertmanager" and c["result"] == "failed" for c in checks)
    assert row.incident_id is not None
    assert _incident(stack, row.incident_id) == ("open", False)
    # The release it tried to leave is still remembered as bad.
    verdicts = [e.data for e in events(stack, rollback_id) if e.kind == "release.verdict"]
    assert [v["verdict"] for v in verdicts] == ["bad"]


def events_of_incident(stack: LoopbackStack, incident_id: int) -> list:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        return list(uow.timeline.list_for_incident(incident_id=incident_id))
